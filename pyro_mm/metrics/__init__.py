"""Evaluation metrics for multimodal VAEs.

* :mod:`~pyro_mm.metrics.classifiers` - per-modality classifiers trained on real data (cached);
* :mod:`~pyro_mm.metrics.coherence` - cross and joint coherence (Shi et al., 2019);
* :mod:`~pyro_mm.metrics.latent_accuracy` - linear-probe accuracy of embeddings;
* :mod:`~pyro_mm.metrics.frechet` - Fréchet distance in classifier features (Heusel et al., 2017);
* :mod:`~pyro_mm.metrics.relatedness` - MEME's W2 relatedness of posteriors (Joy et al., 2022);
* :mod:`~pyro_mm.metrics.cca` - canonical correlation of two views;
* :mod:`~pyro_mm.metrics.likelihood` - importance-sampled log p(X) and log p(x_n | x_S);
* :mod:`~pyro_mm.metrics.generative_discrepancy` - the closed-form sub-sampling cap at learned θ;
* :mod:`~pyro_mm.metrics.pareto` - Pareto k̂ of importance weights (ArviZ);
* :mod:`~pyro_mm.metrics.plots` - PNG figures of the above.
"""

from pyro_mm.metrics.cca import canonical_correlations, cca_correlation, held_out_cca_correlation
from pyro_mm.metrics.classifiers import (
    ImageClassifier,
    TextClassifier,
    classifier_accuracy,
    classifiers_for,
    make_classifier,
    train_classifier,
)
from pyro_mm.metrics.coherence import CoherenceResult, cross_coherence, joint_coherence
from pyro_mm.metrics.frechet import classifier_frechet_distance, frechet_distance
from pyro_mm.metrics.generative_discrepancy import generative_discrepancy
from pyro_mm.metrics.latent_accuracy import linear_probe_accuracy
from pyro_mm.metrics.likelihood import conditional_log_likelihood, importance_log_weights, log_likelihood
from pyro_mm.metrics.pareto import khat_summary, pareto_khat
from pyro_mm.metrics.relatedness import (
    PairedDistances,
    class_distance_matrix,
    histogram_data,
    paired_unpaired_distances,
    wasserstein2_diag,
)

__all__ = [
    "generative_discrepancy",
    "log_likelihood",
    "conditional_log_likelihood",
    "importance_log_weights",
    "ImageClassifier",
    "TextClassifier",
    "make_classifier",
    "train_classifier",
    "classifier_accuracy",
    "classifiers_for",
    "CoherenceResult",
    "cross_coherence",
    "joint_coherence",
    "linear_probe_accuracy",
    "frechet_distance",
    "classifier_frechet_distance",
    "wasserstein2_diag",
    "PairedDistances",
    "paired_unpaired_distances",
    "histogram_data",
    "class_distance_matrix",
    "canonical_correlations",
    "held_out_cca_correlation",
    "cca_correlation",
    "pareto_khat",
    "khat_summary",
]
