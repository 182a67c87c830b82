"""Training data: decoded photos held in memory, random crops for training,
a fixed held-out validation set, and Kodak tiles for evaluation only."""
import glob
import os
import random

import numpy as np
from PIL import Image

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG")


def list_images(root):
    files = []
    for dirpath, _, names in os.walk(root):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(IMAGE_EXTS)]
    return sorted(files)


def load_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def split_train_val(files, val_every=20):
    """Deterministic split: every val_every-th file (sorted order) is held out."""
    val = files[::val_every]
    train = [f for i, f in enumerate(files) if i % val_every != 0]
    return train, val


class CropSampler:
    """Random tile crops with horizontal flips from images held in memory."""

    def __init__(self, images, tile, seed=0):
        self.images = [im for im in images if im.shape[0] >= tile and im.shape[1] >= tile]
        self.tile = tile
        self.rng = random.Random(seed)

    def batch(self, n):
        t = self.tile
        out = np.empty((n, t, t, 3), dtype=np.uint8)
        for i in range(n):
            im = self.images[self.rng.randrange(len(self.images))]
            y = self.rng.randrange(im.shape[0] - t + 1)
            x = self.rng.randrange(im.shape[1] - t + 1)
            crop = im[y:y + t, x:x + t]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = crop
        return out


def fixed_crops(images, tile, per_image=4, seed=1234):
    """A fixed, reproducible set of crops (validation)."""
    rng = random.Random(seed)
    crops = []
    for im in images:
        if im.shape[0] < tile or im.shape[1] < tile:
            continue
        for _ in range(per_image):
            y = rng.randrange(im.shape[0] - tile + 1)
            x = rng.randrange(im.shape[1] - tile + 1)
            crops.append(im[y:y + tile, x:x + tile])
    return np.stack(crops)


def tile_image(im, tile):
    """Split HxWx3 into tiles (raster order), padding the border by edge replication,
    exactly as the codec does. Returns (tiles[N,t,t,3], rows, cols)."""
    h, w, _ = im.shape
    rows, cols = -(-h // tile), -(-w // tile)
    padded = np.pad(im, ((0, rows * tile - h), (0, cols * tile - w), (0, 0)), mode="edge")
    tiles = padded.reshape(rows, tile, cols, tile, 3).transpose(0, 2, 1, 3, 4)
    return tiles.reshape(rows * cols, tile, tile, 3), rows, cols


def untile_image(tiles, rows, cols, h, w):
    t = tiles.shape[1]
    im = tiles.reshape(rows, cols, t, t, 3).transpose(0, 2, 1, 3, 4).reshape(rows * t, cols * t, 3)
    return im[:h, :w]


def load_dataset(roots, cache=None):
    """Decode every image under roots once; cache as a pickle of arrays if asked."""
    if cache and os.path.exists(cache):
        data = np.load(cache, allow_pickle=True)
        return list(data["train"]), list(data["val"])
    files = []
    for r in roots:
        files += list_images(r)
    train_f, val_f = split_train_val(files)
    train = [load_rgb(f) for f in train_f]
    val = [load_rgb(f) for f in val_f]
    if cache:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        arr_t = np.empty(len(train), dtype=object); arr_t[:] = train
        arr_v = np.empty(len(val), dtype=object); arr_v[:] = val
        np.savez(cache, train=arr_t, val=arr_v)
    return train, val


def kodak_images(root):
    return [load_rgb(f) for f in sorted(glob.glob(os.path.join(root, "kodim*.png")))]
