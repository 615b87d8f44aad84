"""The verdict on a paper's ordering of two rows: beyond twice the sd of their difference, or not."""

import pytest

from pyro_mm.experiments.verdict import difference, verdict


def test_difference_and_its_sd():
    d, sd = difference((0.6, 0.03, 3), (0.2, 0.04, 3))
    assert d == pytest.approx(0.4) and sd == pytest.approx(0.05)


@pytest.mark.parametrize("a, b, expected", [
    ((0.60, 0.03, 3), (0.20, 0.04, 3), "reproduced"),        # 0.40 > 2 × 0.05
    ((0.20, 0.04, 3), (0.60, 0.03, 3), "reversed"),
    ((0.30, 0.03, 3), (0.22, 0.04, 3), "not separated"),     # 0.08 < 0.10
    ((0.30, 0.03, 3), (0.20, 0.04, 3), "not separated"),     # 0.10 is not beyond 0.10
    ((0.60, 0.0, 1), (0.20, 0.04, 3), "not separated (fewer than two seeds)"),
])
def test_verdict(a, b, expected):
    assert verdict(a, b) == expected


def _record(row, method, f, seed, forward, backward):
    return {"config": {"method": method, "seed": seed, "labels": {"f": f, "row": row}},
            "result": {"coherence": {"mnist->syndigits": forward, "syndigits->mnist": backward}}}


def test_meme_table_holds_meme_against_the_better_row_of_a_retried_method():
    """MVAE's retry at half the learning rate is the row MEME must beat where it is the better one,
    and the verdict names it; where the first row is better, that one is used."""
    from pyro_mm.experiments.meme_table import MemeTable

    records = []
    for seed, noise in enumerate((-0.01, 0.0, 0.01)):
        records += [_record("meme", "meme", 0.5, seed, 0.60 + noise, 0.80 + noise),
                    _record("mvae", "mvae", 0.5, seed, 0.10 + noise, 0.70 + noise),  # better backward
                    _record("mvae (lr 0.002)", "mvae", 0.5, seed, 0.58 + noise, 0.30 + noise)]  # better forward
    table = MemeTable.verdicts(MemeTable.__new__(MemeTable), records).splitlines()
    forward = next(line for line in table if "| MEME above MVAE | 0.5 | MNIST → SynDigits" in line)
    backward = next(line for line in table if "| MEME above MVAE | 0.5 | SynDigits → MNIST" in line)
    assert "(mvae (lr 0.002))" in forward and "+0.020 ± 0.014" in forward and "| not separated (n = 3) |" in forward  # 0.020 < 2 × 0.014
    assert "(mvae)" in backward and "+0.100" in backward and "reproduced" in backward
    assert "| MEME above MVAE | 1 | MNIST → SynDigits | — |" in "\n".join(table)  # no records at f = 1


def _sweep_record(method, count, seed, fd):
    return {"config": {"method": method, "seed": seed, "labels": {"M": count}, "data": {"num_modalities": count}},
            "result": {"fd_unconditional": fd}}


def test_modality_sweep_verdicts_read_the_rise_of_the_frechet_distance():
    """MMVAE's distance rises by 40 ± 2 (reproduced), MoPoE's by 2 ± 2 (not separated), MVAE's
    falls by 20 ± 2 (reproduced: the paper's 'does not rise', beyond noise) — and where MVAE's rises
    by 20, its row is reversed."""
    from pyro_mm.experiments.modality_sweep import verdicts

    records = []
    for seed, noise in enumerate((-1.0, 1.0)):
        records += [_sweep_record("mmvae", 2, seed, 300 + noise), _sweep_record("mmvae", 5, seed, 340 + noise),
                    _sweep_record("mopoe", 2, seed, 300 + noise), _sweep_record("mopoe", 5, seed, 302 - noise),
                    _sweep_record("mvae", 2, seed, 320 + noise), _sweep_record("mvae", 5, seed, 300 + noise)]
    table = verdicts(records)
    assert "| mmvae: m0's FD from M = 2 to M = 5 | rises | +40.0 ± 2.0 | reproduced (n = 2) |" in table
    assert "| mopoe: m0's FD from M = 2 to M = 5 | rises | +2.0 ± 2.0 | not separated (n = 2) |" in table
    assert "| mvae: m0's FD from M = 2 to M = 5 | does not rise | -20.0 ± 2.0 | reproduced (n = 2) |" in table
    assert "| mmvae's rise exceeds MVAE's | yes | +60.0 ± 2.8 | reproduced (n = 2) |" in table
    assert "no records yet" not in table
    assert "fewer than two" in verdicts([r for r in records if r["config"]["labels"]["M"] == 2])
    rising = [_sweep_record("mvae", 5, r["config"]["seed"], r["result"]["fd_unconditional"] + 40) if
              (r["config"]["method"], r["config"]["labels"]["M"]) == ("mvae", 5) else r for r in records]
    assert "| mvae: m0's FD from M = 2 to M = 5 | does not rise | +20.0 ± 2.0 | reversed (n = 2) |" in verdicts(rising)
