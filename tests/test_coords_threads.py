"""Runs are reduced in parallel threads: astropy's frame-transform graph must not grow meanwhile.

A path search in one thread iterates over the graph; if another thread registers a transform
(the first ``SkyOffsetFrame`` with an ICRS origin does) the search fails with "dictionary changed
size during iteration" (seen in ``gcxr run`` on the seed).  gcxr.coords completes the graph once,
under a lock, before its first transform; this checks that its transforms then only read it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gcxr

REPO = Path(gcxr.__file__).resolve().parents[1]

CODE = """
import json, threading
import numpy as np
from astropy.coordinates import frame_transform_graph as g
from gcxr import coords

def shape():
    return sorted((a.__name__, sorted(b.__name__ for b in sub)) for a, sub in list(g._graph.items()))

coords.frame_matrix("icrs", "galactic")          # the first transform completes the graph
before = shape()
ra, dec = np.float32([266.4, 83.6, 10.0]), np.float32([-29.0, 22.0, -5.0])
threads = [threading.Thread(target=f) for f in (
    lambda: coords.icrs_to_frame_float32(ra, dec, "galactic"),
    lambda: coords.icrs_to_frame_float32(ra, dec, "icrs"),
    lambda: coords.fov_matrix(266.4, -29.0, "galactic"),
    lambda: coords.fov_matrix(83.6, 22.0, "icrs"),
    lambda: coords.frame_matrix("galactic", "icrs"))]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(before == shape()))
"""


def test_transforms_after_the_first_leave_astropy_graph_unchanged():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) is True
