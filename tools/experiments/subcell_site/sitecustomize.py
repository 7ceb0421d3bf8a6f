"""With this folder on PYTHONPATH and SUBCELL=1, any Python process (a training run, the
pipeline, the evaluator) builds networks that copy at sub-cell precision
(``tools/experiments/subcell_match.py``)."""

import os
import sys
from pathlib import Path

if os.environ.get("SUBCELL") == "1":
    sys.path.append(str(Path(__file__).resolve().parent.parent))
    import subcell_match

    subcell_match.apply()
