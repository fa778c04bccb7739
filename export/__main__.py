"""`python -m export [REPOSITORY]`: rewrite every served model's Triton configs from the registry and
export/triton_config.py (after changing either; the ONNX files stay as they are). REPOSITORY defaults
to model_repository/."""

import sys
from pathlib import Path

from export.triton_config import SPECS, write_configs

repository = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "model_repository"
for spec in SPECS.values():
    print(write_configs(spec, repository))
