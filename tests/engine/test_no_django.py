import subprocess
import sys


def test_mlcore_never_imports_django():
    code = ("import sys, mlcore.color, mlcore.models, mlcore.data, mlcore.train, mlcore.weights, "
            "mlcore.inference, mlcore.metrics, mlcore.evaluate, mlcore.bench, mlcore.png; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'gallery')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
