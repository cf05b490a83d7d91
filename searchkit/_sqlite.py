"""sqlite-utils, imported without pandas.

sqlite-utils imports pandas when it is installed (as Ray Data and pymilvus install it), and
pandas brings pyarrow: 0.7 s on every command that opens an index, only so that sqlite-utils
can map ``pandas.Timestamp`` to TEXT. searchkit never hands it a pandas value, so it is
imported with pandas hidden, unless pandas is loaded already. Every module of searchkit
imports sqlite-utils from here.
"""

import sys

_hide = "pandas" not in sys.modules and "sqlite_utils" not in sys.modules
if _hide:
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` fail
try:
    import sqlite_utils
finally:
    if _hide:
        del sys.modules["pandas"]

__all__ = ["sqlite_utils"]
