import subprocess
import sys
from pathlib import Path


def _takeone(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True,
                         text=True, check=True, timeout=60)
    return out.stdout


def test_keys_lifecycle(tmp_path: Path) -> None:
    d = str(tmp_path)
    out = _takeone("keys", "create", "--data-dir", d, "--credits", "5", "--scope", "kling-2.6",
                   "--rate-limit", "10")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tk_") and " " not in secret
    listing = _takeone("keys", "list", "--data-dir", d)
    assert secret not in listing and "kling-2.6" in listing and secret[:7] in listing
    key_id = listing.splitlines()[1].split()[0]
    assert "7.5" in _takeone("keys", "credit", "--data-dir", d, key_id, "2.5")
    _takeone("keys", "revoke", "--data-dir", d, key_id)
    assert "revoked" in _takeone("keys", "list", "--data-dir", d)
    assert secret not in (tmp_path / "takeone.db").read_bytes().decode("latin-1")
