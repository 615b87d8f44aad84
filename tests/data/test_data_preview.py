"""Preview sheets are written as PNG files, captions and missing cells included."""

import matplotlib.image

from pyro_mm.data.captions import CaptionedDigits
from pyro_mm.data.observation import PairedFraction
from pyro_mm.data.polymnist import PolyMNIST
from pyro_mm.data.preview import preview


def test_preview_png(make, tmp_path):
    captions = make(CaptionedDigits, split="test", size=20, observation=PairedFraction(0.5))
    poly = make(PolyMNIST, split="test", num_modalities=3, size=20)
    for ds, name in [(captions, "captions.png"), (poly, "poly.png")]:
        path = preview(ds, tmp_path / "sheets" / name, n=4)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 100
