"""The recorded content of every built-in data set at its default size.

:data:`RECORDED` maps a catalog name (:data:`pyro_mm.data.catalog.DATASETS`) and a split to the
SHA-256 of each array the build produces (:func:`~pyro_mm.data.integrity.array_sha256`), for the
default arguments: the whole MNIST split, seed 0 (and 5 pairings for MNIST-SynDigits, the first
five backgrounds for the PolyMNIST family, digit scale 0.75 for Translated-PolyMNIST; for
MNIST-label the MNIST split itself, in its order). A build
with these arguments that gives other arrays is refused (:func:`~pyro_mm.data.integrity.verify_arrays`).

``scripts/record_data_checksums.py`` builds every entry (or those it names: a new data set) and
prints this table; it changes only when a data set's generator (and so its ``VERSION``) changes.
"""

from __future__ import annotations

from typing import Dict, Optional

__all__ = ["RECORDED", "recorded_sha256"]

RECORDED: Dict[str, Dict[str, Dict[str, str]]] = {
    "mnist-syndigits": {
        "train": {
            "syndigits": "8078754aaf959a05015e794efbed65af9a45e8480f92b4564e92aff00802a6b2",
            "syndigits_labels": "ed48355de346e885e530f92f352b8497bcf812b9385bf69e8b3554747359597f",
            "syndigits_font": "72d14dbbb58c89f44f1a4b23a74c4c07c3d8ba3b2b886f3e73bd5288834565c3",
            "fonts": "f89e9c63bc6467bdc615c7d66e8888656635fb977e88098dd2cd0e34f580e420",
            "mnist_index": "4841cf52355040874734613178c930369d434dfff5062131b05658fe1627badd",
            "syndigits_index": "06f47e2249b383564364c24893cb405731788b464810dc310260cf3aa6a56fdf",
            "labels": "16e3512526dc95345b13cba6ecf8512b291f1904bfc8d1569d9a5c0e080fa571",
        },
        "test": {
            "syndigits": "815af9d97397d8b5b0c81566f9c09d55737a48c487aa1cb8064b60fd39c70acf",
            "syndigits_labels": "19d1dbb3586cf4d101edaa617f6c99d7bf924a3c4856e5c2ee21238af092afad",
            "syndigits_font": "847258a6939decdeebd9e34d90fd7507edc79ceb92f70a4f8c21d0112bce521b",
            "fonts": "f89e9c63bc6467bdc615c7d66e8888656635fb977e88098dd2cd0e34f580e420",
            "mnist_index": "38011071589f385a21a422f8f94c09799a5797a02bac6a87402e665f4420a1d6",
            "syndigits_index": "98c0fbab3a028b07f8bfcac6f984dae1d9c8841df5194b38f8f8816d0a84dadf",
            "labels": "f35db8b614087bb890a153ce8581441c14b820802e1d7bcb9eafed3a8cdfc286",
        },
    },
    "polymnist": {
        "train": {
            "labels": "58a81a4e5980b7ff2869ef9bb361112f809d6fb4bc82b5ebd67424a282cd916e",
            "m0": "515f64be350d27bec0fe411d3ce2434372a670c48c0e8cf5e66446f8b926a56d",
            "m1": "0fa9ce0065a38b6a65ae44d11ade9dbe92ca0b9eceab5c5e13dc416f16a2e4a3",
            "m2": "c31b1fab2b58114c5f3ec90515f42f9734ffccb2ed42ca4b29de2ba9ae9600a3",
            "m3": "9191dcca4702c5e157ee6da303bec7cab14c30de5508ea5d65c5330d6395e12a",
            "m4": "84d8be5494e5f0bdead4ab2add44bf7bab9cdb5edb770e49d0f5fa5038714b49",
            "mnist_index": "5cc7d84cdf6830df17a00f353fdd63b477acc4b6bec1664fe95b097f73ecdfa6",
            "crop_offsets": "bf68872d685ad5c61248faa71c610feb89f44213d14bb58c501d114565959941",
        },
        "test": {
            "labels": "e1eae388862ac8af5af08e0d09165bf513397fa0edcc55fdd2a4c8c73a536b48",
            "m0": "c72092c4189225930cbcbb76997d3f81d696f2b19f9a94d52b1a834c63a1604f",
            "m1": "51b7dc33ccb60554db2e63233984797ea1180ac7b9c6b244b6b88f39a96da244",
            "m2": "a613510876ab87033f0a92973080ca40497aa4573168a8e029237d0d3a918b27",
            "m3": "592b06efc5985fb35238cb51eda2a1eb97f511da378e391d4e795b0cbdef3293",
            "m4": "4d912787ac3b90b4ba10613526b3412477aacdffa0b9bf99e7008ce2617fe5ac",
            "mnist_index": "3352e3ad1e8f391280317f43527af44aaa9fa40880c2600e8b06fbbf87289fd5",
            "crop_offsets": "ce7ee0f73d3986b7a6300ee6d35bdf5245693ac006981988cb2112e7c880390c",
        },
    },
    "translated-polymnist": {
        "train": {
            "labels": "58a81a4e5980b7ff2869ef9bb361112f809d6fb4bc82b5ebd67424a282cd916e",
            "m0": "a53a8770567feed8ae96991bad70d6e2d8d3d589ac051636c7e5d3bf4635901a",
            "m1": "a3b372cf1b46ae1b36b1f6a542c67c2fb1e4863f7f582394292099c720d0def5",
            "m2": "52b912161bfca86e4b1997986510043ecf34b3ee4efd4293b1707b7f9eea6643",
            "m3": "1348843dacc24d20a641d2af9c365c3e0c8a1fdc7465742b3cde3bf0b16aa72f",
            "m4": "d8ae328b00d57a44e166a6d6a7a53bab0774cfdc32fed5a50efe7c47eb7a7ace",
            "mnist_index": "2a6f28290611d1e7e9bd7871e0dc51983899b45e69f955a164f6d84e6ae9642f",
            "crop_offsets": "ece8110d3e510d638f58e222e7c8fe730fce223eb4c3d9fbf43f0e8133409ba6",
            "digit_offsets": "1c8e8bc78b2d511b2c3470be0e390a4728da40599458003b33e55d321a2514d8",
        },
        "test": {
            "labels": "e1eae388862ac8af5af08e0d09165bf513397fa0edcc55fdd2a4c8c73a536b48",
            "m0": "eee7070c0b39438f5a763c3f548ecc3ed2a70639ff5288df134ab7f3d66897d7",
            "m1": "0f22b3e00ce7f17bce66750922fb3a4efe17ad8709661fcf021265fad71447b7",
            "m2": "46f248fc8c2e6a9c5e86ea8c80886406f450c03f4735151d16637e71282263af",
            "m3": "bd9895cc14562a20ed430d4c26e4d38cc2d046338b9a5a7b005ff877a698a589",
            "m4": "fbd04ee5a5562e79a6f00621b0e475633320c27356ae54aceee468bcc8c88d70",
            "mnist_index": "733e8c831cb06930d8dc840f38d0d14b36ed7044d4fdee090e43baaca15dd4d5",
            "crop_offsets": "ea83e820465e543e2622f79202703a191dfe8769e625bc6b4909924edf1c170a",
            "digit_offsets": "85c53af0aa592f5118644e16158daf529a27c59dce1fb8f99db2b2fa05d6d802",
        },
    },
    "captioned-digits": {
        "train": {
            "image": "e852e39c7d6abfb547af98c6b4379cc2565b3938c305e9c49038b86a301871a9",
            "text": "3f20eb037e0ebf93c02d02d5a88bc296e23f2951d67ee178d8c710e231c04aad",
            "labels": "58a81a4e5980b7ff2869ef9bb361112f809d6fb4bc82b5ebd67424a282cd916e",
            "mnist_index": "08b75c0e18223b3510f520cd6a6849986049af7b470e241da48cbed9e16e2e8c",
            "thickness": "b418d0471bf0d89e97d5dea91ef2f1466f6aae4edce63ccb7553b76c91a0019c",
            "slant": "7291efb098fadb2bfef76699df2223ca6fcb06beeaebf62fde387ed550c32d65",
            "colour_pair": "acfcb436a9e63c500b0a2efb3dd518cccff1fa64c8a6c0407aac1afc0fb2bf60",
        },
        "test": {
            "image": "4b7791d6ac2cb56cf46448491b99096dac1b10b3b450ea908c3ba9e6cba0d002",
            "text": "2e5067117868d97d98559406ecb6e6f67bdef62ade15758ff81b5858fd0adb6a",
            "labels": "e1eae388862ac8af5af08e0d09165bf513397fa0edcc55fdd2a4c8c73a536b48",
            "mnist_index": "0a7f9a0ae0b11ee46c5e36d09a10ffa93fa2d02b5a174c77c01b0d081b660521",
            "thickness": "cc8b20b37420fbf83964ec4e958e5aee05d8be4fa93cb68d77c9fde288c4b294",
            "slant": "7ded7e23ef283908256b2ce84e4740935694ef2069619ad5d37fcae603a392ae",
            "colour_pair": "c148ce907bd3b4985fab67ff0167faa8fdb897a2c08a4bd4149d44d7b2bcf2a1",
        },
    },
    "mnist-label": {
        "train": {
            "image": "577403ad093429632afbf5215404b1bbcfc6394e36dc984021b50774f7684d29",
            "labels": "58a81a4e5980b7ff2869ef9bb361112f809d6fb4bc82b5ebd67424a282cd916e",
            "mnist_index": "08b75c0e18223b3510f520cd6a6849986049af7b470e241da48cbed9e16e2e8c",
        },
        "test": {
            "image": "0afb5de123413d452827a925dc48afe1c72e0147260b4394fdd5b775114f56c4",
            "labels": "e1eae388862ac8af5af08e0d09165bf513397fa0edcc55fdd2a4c8c73a536b48",
            "mnist_index": "0a7f9a0ae0b11ee46c5e36d09a10ffa93fa2d02b5a174c77c01b0d081b660521",
        },
    },
}


def recorded_sha256(name: str, split: str) -> Optional[Dict[str, str]]:
    """The recorded digests of data set ``name``'s ``split`` at its default size (``None``: none)."""
    return RECORDED.get(name, {}).get(split)
