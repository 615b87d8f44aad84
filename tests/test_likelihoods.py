"""Likelihood distributions against torch's own densities."""

import pyro.distributions as dist
import pytest
import torch

from pyro_mm.likelihoods import IndependentBernoulli


@pytest.mark.parametrize("event_dims", [0, 1, 2])
@pytest.mark.parametrize("data", ["binary", "intensities"])
def test_independent_bernoulli_is_the_summed_elementwise_bernoulli(event_dims, data):
    """Σ x ℓ − Σ softplus(ℓ) equals torch's Bernoulli log-density summed over the event, with
    logits of several particles broadcast against one batch of data (logits up to ±30, where the
    two sums are large and nearly cancel), in value and in gradient."""
    g = torch.Generator().manual_seed(0)
    logits = (30 * (2 * torch.rand(4, 5, 6, 7, generator=g, dtype=torch.float64) - 1)).requires_grad_()
    x = torch.rand(5, 6, 7, generator=g, dtype=torch.float64)
    if data == "binary":
        x = x.round()
    ours = IndependentBernoulli(dist.Bernoulli(logits=logits, validate_args=False), event_dims).log_prob(x)
    reference = dist.Bernoulli(logits=logits, validate_args=False).to_event(event_dims).log_prob(x)
    assert ours.shape == reference.shape == (4, 5, 6, 7)[: 4 - event_dims]
    assert torch.allclose(ours, reference, rtol=1e-12, atol=1e-10)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_ref,) = torch.autograd.grad(reference.sum(), logits)
    assert torch.allclose(g_ours, g_ref, rtol=1e-12, atol=1e-12)
    in_float32 = IndependentBernoulli(dist.Bernoulli(logits=logits.detach().float(), validate_args=False),
                                      event_dims).log_prob(x.float())
    assert torch.allclose(in_float32.double(), reference.detach(), rtol=1e-5, atol=1e-3)


def test_categorical_of_a_label_is_torch_s_categorical_and_names_bad_data():
    """Categorical(K) of a label (event shape ()): logits [N, K] -> one log-probability per
    sample, torch's own; data that are not int64 ids in [0, K) are named with the modality."""
    from pyro_mm.likelihoods import Categorical, make_likelihood

    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(3, 5, 10, generator=g), torch.randint(0, 10, (5,), generator=g)
    likelihood = Categorical(10)
    assert likelihood.num_categories == 10 and likelihood.param_shape(()) == (10,)
    density = likelihood(logits, 0)
    assert density.batch_shape == (3, 5) and density.event_shape == ()
    assert torch.allclose(density.log_prob(labels), torch.distributions.Categorical(logits=logits).log_prob(labels))
    observed = torch.ones(5, dtype=torch.bool)
    likelihood.check_data("label", labels, observed)
    with pytest.raises(TypeError, match=r"modality 'label': Categorical\(10\) data must be int64 category ids .* "
                                        r"got torch.float32"):
        likelihood.check_data("label", labels.float(), observed)
    with pytest.raises(ValueError, match=r"modality 'label': category ids \(labels or tokens\) must lie in \[0, 10\), "
                                         r"got values in \[11, 11\] at 1 entries"):
        likelihood.check_data("label", torch.tensor([0, 11, 2, 3, 4]), observed)
    likelihood.check_data("label", torch.tensor([0, 11, 2, 3, 4]), torch.tensor([True, False, True, True, True]))
    with pytest.raises(TypeError, match="the number of categories must be an integer, got 2.5"):
        Categorical(2.5)
    with pytest.raises(ValueError, match=r"Categorical\(10\) for a digit label"):
        make_likelihood("categorical")
    soft = likelihood.pseudo_input(likelihood.pseudo_parameter(labels))
    assert soft.shape == (5, 10) and torch.equal(soft.argmax(-1), labels)


def test_modality_docs_list_every_likelihood():
    import pyro_mm.likelihoods as likelihoods
    import pyro_mm.modality as modality

    documented = modality.Modality.__doc__ + modality.__doc__
    for name in likelihoods.__all__:
        cls = getattr(likelihoods, name)
        if isinstance(cls, type) and issubclass(cls, likelihoods.Likelihood) and cls is not likelihoods.Likelihood:
            assert f"{name}(" in documented, name
    assert "Categorical(10)" in documented and '"bernoulli"' in documented
