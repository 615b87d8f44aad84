"""The verdict on a paper's ordering of two rows: beyond twice the sd of their difference, or not."""

import pytest

from pyro_mm.experiments.verdict import comparison_cells, difference, signed, verdict


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


def test_a_difference_over_one_seed_shows_no_spread():
    """One seed has no sd: the difference is printed bare, not as ``± 0.000``."""
    assert signed(0.25, 0.0, 1, 3) == "+0.250" and signed(-0.25, 0.014, 2, 3) == "-0.250 ± 0.014"
    cells = comparison_cells((0.6, 0.0, 1), (0.2, 0.0, 1))
    assert "±" not in cells and cells.endswith("| +0.400 | not separated (fewer than two seeds) (n = 1)")


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


def _beta_record(method, beta, seed, coherence, fd):
    return {"config": {"method": method, "seed": seed, "labels": {"beta": beta}},
            "result": {"coherence": coherence, "fd_unconditional": fd}}


def test_beta_tradeoff_verdicts_ask_that_coherence_and_quality_move_together_beyond_noise():
    """From β = 0.25 to 4, MMVAE grows more coherent (+0.10 ± 0.01) and its images worse (+20 ± 2):
    a trade-off, reproduced; MVAE grows more coherent with better images, both beyond noise:
    reversed; MoPoE's coherence moves within noise, and so does MMVAE's distance where it is noisy
    (± 10): not separated; one seed or one β: no verdict."""
    from pyro_mm.experiments.beta_tradeoff import verdicts

    def grid(fd_noise):
        records = []
        for seed, sign in enumerate((-1, 1)):
            for method, coherence, fd in (("mmvae", 0.10, 20), ("mvae", 0.10, -20), ("mopoe", 0.01, 20)):
                records += [_beta_record(method, 0.25, seed, 0.30 + sign * 0.005, 200 + sign * fd_noise),
                            _beta_record(method, 4.0, seed, 0.30 + coherence + sign * 0.005,
                                         200 + fd + sign * fd_noise)]
        return records

    steady = grid(fd_noise=1.0)
    table = verdicts(steady)
    assert "| mmvae | 0.25 → 4 | +0.100 ± 0.010 | +20.0 ± 2.0 | trades | reproduced (n = 2) |" in table
    assert "| mvae | 0.25 → 4 | +0.100 ± 0.010 | -20.0 ± 2.0 | trades | reversed (n = 2) |" in table
    assert "| mopoe | 0.25 → 4 | +0.010 ± 0.010 | +20.0 ± 2.0 | trades | not separated (n = 2) |" in table
    noisy = verdicts(grid(fd_noise=5.0))
    assert "| mmvae | 0.25 → 4 | +0.100 ± 0.010 | +20.0 ± 10.0 | trades | not separated (n = 2) |" in noisy
    assert "fewer than two seeds" in verdicts([r for r in steady if r["config"]["seed"] == 0])
    assert "fewer than two β" in verdicts([r for r in steady if r["config"]["labels"]["beta"] == 4.0])


def _caption_record(method, f, seed, cca, coherence):
    return {"config": {"method": method, "seed": seed, "labels": {"f": f}},
            "result": {"cca": {"image->text": cca, "text->image": cca},
                       "coherence": {"image->text": coherence, "text->image": coherence}}}


def test_captions_verdicts_hold_meme_against_mvae_at_both_fractions_and_mmvae_at_one():
    from pyro_mm.experiments.captions import verdicts

    records = []
    for seed, noise in enumerate((-0.01, 0.01)):
        records += [_caption_record("meme", 1.0, seed, 0.50 + noise, 0.70 + noise),
                    _caption_record("mvae", 1.0, seed, 0.10 + noise, 0.20 + noise),
                    _caption_record("mmvae", 1.0, seed, 0.52 + noise, 0.60 + noise),
                    _caption_record("meme", 0.5, seed, 0.40 + noise, 0.60 + noise)]
    table = verdicts(records)
    assert ("| MEME above MVAE | CCA | 1 | image → caption | 0.500 [0.064] | 0.100 [0.000] | +0.400 ± 0.020 | "
            "reproduced (n = 2) |") in table
    assert ("| MEME above MVAE | coherence | 1 | caption → image | 0.700 | 0.200 | +0.500 ± 0.020 | "
            "reproduced (n = 2) |") in table
    assert ("| MEME above MMVAE | CCA | 1 | caption → image | 0.500 [0.074] | 0.520 [0.058] | -0.020 ± 0.020 | "
            "not separated (n = 2) |") in table
    assert "| MEME above MVAE | CCA | 0.5 | image → caption | — | — | — | no records yet |" in table
    assert "MEME above MMVAE | CCA | 0.5" not in table  # the paper has MMVAE at f = 1 only
