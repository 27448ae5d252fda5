"""`pairgen` is the pure library: importing any of it must not import Ray (only `pipelines/` does)."""

import subprocess
import sys


def test_pairgen_never_imports_ray():
    modules = ["pairgen.build", "pairgen.plan", "pairgen.report", "pairgen.validate", "pairgen.export",
               "pairgen.gallery", "pairgen.sources", "pairgen.prompts.bias_check", "pairgen.config"]
    code = f"import sys; import {', '.join(modules)}; bad = [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
