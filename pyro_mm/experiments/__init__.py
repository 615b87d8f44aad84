"""The seed papers' experiments, one command each: ``pyro-mm reproduce EXPERIMENT``.

==================  =============================================================================
experiment          what it reproduces
==================  =============================================================================
``meme-table``      MEME's Tables 1–3 on MNIST–SynDigits (:mod:`.meme_table`)
``modality-sweep``  Daunhawer et al.'s generative-quality gap against the number of modalities
                    on PolyMNIST (:mod:`.modality_sweep`)
``beta-tradeoff``   coherence against generative quality as β moves, Translated-PolyMNIST
                    (:mod:`.beta_tradeoff`)
``linear-gaussian`` Theorem 1 of Daunhawer et al. in closed form (:mod:`.linear_gaussian`;
                    ``pyro-mm demo`` is its alias)
``captions``        MEME's image–caption experiment on captioned digits (:mod:`.captions`)
==================  =============================================================================

:func:`run_experiment` runs one (:mod:`~pyro_mm.experiments.runner`) and writes its table and
figure. Its grid (:mod:`.grid`) is trained by any number of processes sharing one output
directory (:mod:`.scheduler`, :mod:`.cell_lock`), and every finished cell leaves a small record
that a results store keeps across sessions (:mod:`.records`).
"""

from .runner import EXPERIMENTS, run_experiment

__all__ = ["EXPERIMENTS", "run_experiment"]
