"""The pyro-mm command: help texts and a tiny demo run."""

import pytest

from pyro_mm.cli import build_parser, main


def test_help_of_every_sub_command(capsys):
    parser = build_parser()
    for argv in ([], ["demo"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv + ["--help"])
        assert exit_info.value.code == 0
    assert "synthetic" in capsys.readouterr().out


def test_tiny_demo_prints_a_table(capsys):
    assert main(["demo", "--samples", "120", "--epochs", "2", "--no-progress", "--methods", "mmvae", "mvae"]) == 0
    out = capsys.readouterr().out
    assert "| mmvae |" in out and "| mvae |" in out and "epoch   2" in out


@pytest.mark.parametrize("argv", [["demo", "--epochs", "0"], ["demo", "--missing", "1.5"], ["demo", "--methods", "vae"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
