"""Time the GloRe unit (both product orders) against a Non-local block and a plain matmul.

Same as ``glore bench``; the code lives in glore.tools.bench. Run: ``.venv/bin/python benchmarks/bench_unit.py``.
"""

from glore.tools.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
