"""Delta Lake: what a table's log says (file statistics, maintenance and commits) and the SQL helpers, pure."""
