"""The stream-health vocabulary, without the rules: what sensors need when a DAG is parsed."""

from __future__ import annotations

OK, LAGGING, STALLED, STOPPED, REWOUND = "OK", "LAGGING", "STALLED", "STOPPED", "REWOUND"
STATUSES = (OK, LAGGING, STALLED, STOPPED, REWOUND)  # least to most severe
DEFAULT_WINDOW = 10
DEFAULT_WAIT_FOR = (OK,)
DEFAULT_FAIL_ON = (STALLED, STOPPED, REWOUND)
