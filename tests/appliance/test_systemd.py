from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from appliance import systemd


def _parse(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(text)
    return cp


def test_user_unit(tmp_path: Path) -> None:
    target = systemd.UnitTarget.choose(False, tmp_path)
    path = systemd.install(target, ["--data-dir", "/srv/fox den"], start=False)
    unit = _parse(path.read_text())
    assert unit["Service"]["ExecStart"].endswith("--data-dir '/srv/fox den' serve")
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "default.target"
    assert "AmbientCapabilities" not in unit["Service"]
    assert systemd.uninstall(target, stop=False) is True
    assert not path.exists()
    assert systemd.status(target) == "not installed"


def test_system_unit_can_bind_443(tmp_path: Path) -> None:
    text = systemd.render_unit(systemd.UnitTarget(True, tmp_path), [], user="foxden")
    unit = _parse(text)
    assert unit["Service"]["User"] == "foxden"
    assert unit["Service"]["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_no_systemd_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no systemctl anywhere
    target = systemd.UnitTarget.choose(False, tmp_path)
    with pytest.raises(systemd.ServiceError, match="does not run systemd"):
        systemd.install(target, [], start=True)
