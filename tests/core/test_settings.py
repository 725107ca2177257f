import subprocess
import sys


def test_two_processes_starting_together_share_one_secret_key(tmp_path) -> None:
    code = (
        "import os; os.environ.pop('SECRET_KEY', None); "
        "from leadrelay import settings; print(settings.SECRET_KEY)"
    )
    env = {"LEADRELAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=60)[0].decode().strip() for p in procs}
    assert len(keys) == 1 and len(keys.pop()) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
