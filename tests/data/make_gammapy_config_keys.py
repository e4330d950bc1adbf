"""Record every dotted key of gammapy 2.1's ``AnalysisConfig`` (the leaves of its schema).

usage: .venv-gammapy/bin/python tests/data/make_gammapy_config_keys.py
Writes ``gammapy_config_keys.json`` next to this script; tests/test_config_keys.py
checks that gcxr's schema has exactly these keys.
"""
import json
from pathlib import Path

from gammapy import __version__
from gammapy.analysis import AnalysisConfig
from pydantic import BaseModel


def leaves(model: BaseModel, prefix: str = "") -> list[str]:
    out = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out += leaves(value, key + ".")
        else:
            out.append(key)
    return out


if __name__ == "__main__":
    keys = leaves(AnalysisConfig())
    path = Path(__file__).with_name("gammapy_config_keys.json")
    path.write_text(json.dumps({"gammapy": __version__, "keys": keys}, indent=1) + "\n")
    print(len(keys), "keys ->", path)
