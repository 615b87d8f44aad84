"""What holds MEME's MNIST → SynDigits coherence down: faint images, or wrong digits?

A SynDigits image has colours, a contrast polarity (light digit on dark ground or the reverse) and
a font that its MNIST partner does not predict. A model whose only latent is shared generates, from
an MNIST digit, the decoder's *mean* SynDigits image over all of them: a faint, blurred digit. The
script separates the two effects with the judge the coherence metric uses (the cached SynDigits
classifier) on the same test pairs:

1. the SynDigits images generated from MNIST, as cross coherence judges them;
2. the same images contrast-stretched to [0, 1] per image (what contrast alone costs);
3. real SynDigits images whose contrast is reduced to the generated images' (the spatial
   standard deviation of each channel), and to half and a third of it: whether the judge itself
   fails on faint digits;
4. the mean training image of each digit — what a decoder outputs for a digit when nothing tells
   it the colours, the font or the polarity — over all images, and over the light-digit and the
   dark-digit images separately (polarity: the luminance of the image's centre against that of
   its left and right borders), judged as they are and contrast-stretched.

If (2) stays far below the judge's accuracy on (3), the digits themselves are blurred, not just
faint; (4) shows how much of a digit's contrast survives averaging over what MNIST does not say.
It reads the main job's model (``scripts/main.sh`` writes ``runs/main/model.pt``); ``--small``
trains a tiny MEME for a few seconds instead.

    python examples/faint_cross_generation.py [--run runs/main] [--samples 1000] [--small]
"""

import argparse
from pathlib import Path

import torch

from pyro_mm.api import MEME
from pyro_mm.data import MNISTSynDigits, PairedFraction
from pyro_mm.main_job import MainJobConfig, build_model
from pyro_mm.metrics import classifiers_for


def stretched(images: torch.Tensor) -> torch.Tensor:
    """Each image's pixels mapped linearly onto [0, 1]."""
    flat = images.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (images.dim() - 1)
    return (images - low.reshape(shape)) / (high - low).clamp_min(1e-6).reshape(shape)


def with_contrast(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Each image blended towards its own mean colour: contrast × ``factor``."""
    mean = images.mean((-2, -1), keepdim=True)
    return mean + factor * (images - mean)


def contrast(images: torch.Tensor) -> float:
    """The spatial standard deviation of every image's channels, averaged over channels and
    images (what :func:`with_contrast` scales)."""
    return images.flatten(-2).std(-1).mean().item()


def is_light_digit(images: torch.Tensor) -> torch.Tensor:
    """Per image ``[N, 3, H, W]``: whether the digit is lighter than its ground — the mean
    luminance (ITU-R 601 weights) of the central block against that of the outer quarter of the
    columns on either side."""
    luminance = (images * images.new_tensor([0.299, 0.587, 0.114]).reshape(3, 1, 1)).sum(-3)
    h, w = luminance.shape[-2:]
    centre = luminance[..., h // 4: 3 * h // 4, 3 * w // 8: 5 * w // 8].mean((-2, -1))
    border = torch.cat([luminance[..., : w // 4], luminance[..., -(w // 4):]], -1).mean((-2, -1))
    return centre > border


def class_means(images: torch.Tensor, labels: torch.Tensor):
    """``(means [C, ...], classes [C])``: the mean image of every class present."""
    classes = labels.unique()
    return torch.stack([images[labels == c].mean(0) for c in classes]), classes


def trained_model(args):
    if not args.small:
        return MEME.load(args.run / "model.pt")
    torch.manual_seed(0)
    train = MNISTSynDigits("train", size=60, observation=PairedFraction(0.5, "alternate"))
    vae = build_model(train, MainJobConfig())
    vae.fit(train, epochs=None, steps=20, batch_size=32, lr=2e-3, seed=0, progress=False)
    return vae


def main(args):
    vae = trained_model(args).eval()
    test = MNISTSynDigits("test", size=args.samples)  # every digit has several partners: the first pairs
    training = MNISTSynDigits("train", size=args.classifier_size)  # the judges' own training pairs
    classifiers, _ = classifiers_for(training, test, progress=not args.small)
    judge = classifiers["syndigits"]
    batch = test.batch(torch.arange(min(args.samples, len(test))), complete=True)
    torch.manual_seed(0)
    with torch.no_grad():
        generated = vae.predict(batch, ["mnist"], ["syndigits"])["syndigits"]
        real = batch["syndigits"]

        def accuracy(images):
            return (judge(images).argmax(-1) == batch.labels).float().mean().item()

        ratio = contrast(generated) / contrast(real)
        rows = [(name, accuracy(images), contrast(images)) for name, images in (
            ("generated from MNIST (cross coherence)", generated),
            ("generated, contrast-stretched per image", stretched(generated)), ("real", real))]
        for factor in (ratio, ratio / 2, ratio / 3):
            faint = with_contrast(real, factor)
            rows.append((f"real at contrast × {factor:.2f}", accuracy(faint), contrast(faint)))
        means = []
        train = training.batch(torch.arange(len(training)), complete=True)
        light = is_light_digit(train["syndigits"])
        for name, chosen in (("all images", slice(None)), ("light-digit images", light), ("dark-digit images", ~light)):
            images, classes = class_means(train["syndigits"][chosen], train.labels[chosen])
            for how, shown in (("", images), (", stretched", stretched(images))):
                right = (judge(shown).argmax(-1) == classes).sum().item()
                means.append((f"mean of {name} of each digit{how}", f"{right}/{len(classes)}",
                              contrast(shown)))
    print_table(f"SynDigits judge on {len(batch)} test pairs", "judge accuracy",
                [(name, f"{acc:.3f}", sd) for name, acc, sd in rows])
    print_table(f"\nThe same judge on the mean image of each digit over {len(training)} training pairs "
                f"({light.float().mean().item():.1%} light digits)", "digits judged right", means)


def print_table(title: str, measure: str, rows) -> None:
    """A Markdown table of ``(images, measure, contrast)`` rows under ``title``."""
    print(title)
    print(f"| images | {measure} | contrast (channel sd) |")
    print("|---|---:|---:|")
    for name, value, sd in rows:
        print(f"| {name} | {value} | {sd:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/main"), help="folder holding model.pt")
    parser.add_argument("--samples", type=int, default=1000, help="test pairs (default 1000)")
    parser.add_argument("--small", action="store_true", help="seconds: a tiny model trained here (run by the tests)")
    args = parser.parse_args()
    args.classifier_size = 200 if args.small else 10000
    if args.small:
        args.samples = 40
    main(args)
