"""Pure decisions on what hooks measured: no I/O, shared by sensors' pokes and their triggers."""
