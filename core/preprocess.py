"""Turn whatever a person draws or uploads into the 28x28 image the models were trained on.

MNIST digits were prepared one way: the ink's bounding box scaled to fit 20x20 keeping
the aspect ratio, anti-aliased, then placed in 28x28 so that the centre of mass sits at
the centre. ``to_mnist`` applies that recipe to anything: a streamlit-drawable-canvas
array (RGBA, transparent or opaque background), an upload decoded by ``read_image``
(grey, RGB, RGBA; dark ink on light or light on dark), of any size. It also brings the
pen's stroke width to MNIST's typical width, so thin and thick pens look alike.

    from core.preprocess import read_image, to_mnist, NoDigit, ImageError
    x = to_mnist(read_image(path_or_bytes))   # float32 (28, 28) in [0, 1], white digit on black

Blank or near-blank input raises ``NoDigit``; unusable files raise ``ImageError``. Both
are ValueErrors whose message is a sentence for the person at the screen. ``naive`` is
the baseline that skips the recipe (resize the whole image), kept to measure against.
NumPy and Pillow only; every function is pure, so any thread may call it.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.pixels import affine, morph

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # 5 MB: any honest photo of a digit fits
MAX_PIXELS = 4096 * 4096  # 16.8 MP; refused before decoding, far below Pillow's bomb limit
# What decoding may allocate, refused before decoding: width x height x bytes per pixel, counting every channel
# at its bit depth (Pillow keeps any colour image in 4 bytes a pixel, a 16-bit RGBA file needs 8). 64 MiB is a
# 16.8 MP colour photo; a 16-bit RGBA image of that size, a few kB compressed, would need twice as much.
MAX_DECODED_BYTES = 64 * 2**20
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # decoders we allow: no exotic parsers

# The recipe, measured on the MNIST training set (threshold 0.3 on [0, 1] images).
BOX = 20  # the ink's longer side, in output pixels
SIZE = 28
CENTRE = 14.0  # MNIST's mean centre of mass, row and column (pixel-index coordinates)
STROKE_RATIO = 0.12  # MNIST's median stroke width / bounding-box side (width = 2 * area / perimeter)
STROKE_TOLERANCE = 0.25  # leave pens within 25% of that width alone

INK_LEVEL = 0.3  # what counts as ink for the bounding box, on the normalised ink map
NOISE_FLOOR = 0.15  # ink below this fraction of the strongest ink is background noise (JPEG, paper)
MIN_CONTRAST = 0.1  # ink must differ from the background by 10% of full scale, or it is blank
MIN_EXTENT = 1 / 25  # ink smaller than this fraction of the image's longer side is a stray mark
MIN_ELONGATION = 3.0  # a mark less than 3 stroke widths across is a dot, not a digit
WORK = 80  # the ink's longer side at the working resolution where strokes are adjusted
MAX_SIDE = 640  # larger inputs are first shrunk to this (a digit needs no more)


BLANK = "Nothing drawn yet: the image is blank. Draw a digit from 0 to 9, large and in the middle."


class NoDigit(ValueError):
    """Blank or near-blank input; ``reason`` is "blank" or "dot", the message is for the user."""

    def __init__(self, message: str, reason: str = "blank"):
        super().__init__(message)
        self.reason = reason


class ImageError(ValueError):
    """An image that cannot be used (not an image, corrupt, too large, animated, bad shape)."""


# --- decoding files ------------------------------------------------------------------------


def _read_bytes(data) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        path = os.fspath(data)
        try:
            size = os.path.getsize(path)
            if size > MAX_UPLOAD_BYTES:
                raise ImageError(_too_big(size))
            with open(path, "rb") as f:
                raw = f.read(MAX_UPLOAD_BYTES + 1)
        except FileNotFoundError:
            raise ImageError(f"File not found: {path}") from None
        except IsADirectoryError:
            raise ImageError(f"{path} is a folder, not an image file.") from None
        except OSError as e:
            raise ImageError(f"Cannot read {path}: {e.strerror or e}.") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ImageError(_too_big(len(raw)))
    if not raw:
        raise ImageError("The file is empty.")
    return raw


def _too_big(size: int) -> str:
    return f"The file is {size / 2**20:.1f} MB; images up to {MAX_UPLOAD_BYTES / 2**20:.0f} MB are accepted."


def read_image(data) -> np.ndarray:
    """Decode an image file (bytes or path) by its content into uint8 (H,W), (H,W,3) or (H,W,4).

    PNG, JPEG, GIF, BMP, WebP and TIFF are accepted whatever the file is called. EXIF
    orientation is applied; palette, grey+alpha, CMYK and 16-bit images are converted.
    Refused before any pixel is decoded: animated and multi-page images (which frame holds the
    digit? the check reads two pages at most, however many the file holds), files over
    ``MAX_UPLOAD_BYTES``, images over ``MAX_PIXELS`` or whose pixels would take more than
    ``MAX_DECODED_BYTES`` once decoded. Raises ImageError.
    """
    raw = _read_bytes(data)
    try:
        with Image.open(io.BytesIO(raw), formats=FORMATS) as im:
            if _more_than_one_frame(im):
                raise ImageError("Animated or multi-page images are not supported: upload a single still image of a digit.")
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"The image is {w}x{h} pixels; at most {MAX_PIXELS / 1e6:.0f} megapixels are accepted.")
            need = w * h * bytes_per_pixel(im)
            if need > MAX_DECODED_BYTES:
                raise ImageError(f"The image is {w}x{h} pixels of {im.mode} at {bytes_per_pixel(im)} bytes a pixel: "
                                 f"{need / 2**20:.0f} MB once decoded, and at most {MAX_DECODED_BYTES / 2**20:.0f} MB "
                                 "are accepted. Save it smaller or as 8-bit.")
            im.load()  # decode now, inside the try: truncated data fails here
            return _to_array(_shrunk(ImageOps.exif_transpose(im)))
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"The image has too many pixels; at most {MAX_PIXELS / 1e6:.0f} megapixels are accepted.") from None
    except UnidentifiedImageError:
        raise ImageError("This is not an image we can read: upload a PNG, JPEG, GIF, BMP, WebP or TIFF file.") from None
    except Exception as e:  # decoders raise OSError, ValueError, SyntaxError, struct.error... on damage
        raise ImageError(f"The image file is corrupt or truncated ({type(e).__name__}: {e}).") from None


def _more_than_one_frame(im: Image.Image) -> bool:
    """Whether the file holds a second frame or page, found by looking for that one only.

    ``n_frames`` would count them all, and a TIFF's pages are counted one by one: 40,000 pages
    in 4.5 MB took 8 s of CPU to count.
    """
    try:
        im.seek(1)
    except EOFError:
        return False
    im.seek(0)
    return True


_DEPTH = re.compile(r";(16|32)")


def bytes_per_pixel(im: Image.Image) -> int:
    """What decoding ``im`` allocates per pixel: its channels at the file's bit depth (read from the decoder's
    raw mode, so 16-bit colour counts double), and at least the 4 bytes Pillow keeps any colour pixel in."""
    bands = len(im.getbands())
    depth = 4 if im.mode in ("I", "F") or im.mode.startswith("I;32") else 2 if im.mode.startswith("I;16") else 1
    for tile in getattr(im, "tile", None) or ():
        args = getattr(tile, "args", None)
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and (m := _DEPTH.search(rawmode)):
            depth = max(depth, int(m.group(1)) // 8)
    return max(bands * depth, 4 if bands > 1 else 1)


def _shrunk(im: Image.Image) -> Image.Image:
    """A decoded image over ``MAX_SIDE`` box-averaged down inside Pillow, before it becomes arrays (as
    ``_as_uint8`` would do anyway): a large photo is then copied once at full size, not three times."""
    factor = -(-max(im.size) // MAX_SIDE)
    if factor <= 1 or im.mode not in ("L", "RGB", "RGBA", "LA", "La", "RGBa", "I", "I;16", "F"):
        return im
    if im.mode in ("LA", "La"):
        im = im.convert("RGBA")
    return im.reduce(factor)


def _to_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "RGB", "RGBA"):
        pass
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "F" or mode.startswith("I"):
        return _wide_to_uint8(np.asarray(im), mode)
    else:  # CMYK, YCbCr, LAB, HSV, RGBX
        im = im.convert("RGB")
    return np.asarray(im, np.uint8).copy()


def _wide_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float grey -> uint8."""
    a = a.astype(np.float64)
    if mode == "F":
        a = a * 255 if a.size and np.nanmax(a) <= 1.0 else a
    elif mode.startswith("I;16") or (a.size and a.max() > 255):
        a = a / 257  # 0..65535 -> 0..255
    return np.clip(np.nan_to_num(np.round(a)), 0, 255).astype(np.uint8)


# --- finding the ink -----------------------------------------------------------------------


def _as_uint8(image) -> np.ndarray:
    """Any supported array -> uint8 (H, W, C) with C in 1..4, large images shrunk."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"Expected a grey, RGB or RGBA image array, got shape {np.shape(image)}.")
    if a.dtype != np.uint8:
        if a.dtype == bool:
            a = a * np.uint8(255)
        elif a.dtype.kind in "ui":
            a = np.clip(a / 257 if a.max(initial=0) > 255 else a, 0, 255)
        elif a.dtype.kind == "f":
            a = np.nan_to_num(a.astype(np.float32))
            a = a * 255 if a.max(initial=0) <= 1.0 else a  # floats are [0, 1] or [0, 255]
        else:
            raise ImageError(f"Unsupported image array type {a.dtype}.")
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
    if max(a.shape[:2]) > MAX_SIDE:  # box-average down first: keeps the rest fast for huge photos
        factor = -(-max(a.shape[:2]) // MAX_SIDE)
        small = np.asarray(Image.fromarray(np.ascontiguousarray(a[..., 0] if a.shape[2] == 1 else a)).reduce(factor))
        a = small[..., None] if small.ndim == 2 else small
    return a


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels of the outer ring (about 2% of the size, at least one pixel), as (n, C)."""
    b = max(1, min(a.shape[:2]) // 50)
    return np.concatenate([a[:b].reshape(-1, a.shape[2]), a[-b:].reshape(-1, a.shape[2]),
                           a[b:-b, :b].reshape(-1, a.shape[2]), a[b:-b, -b:].reshape(-1, a.shape[2])])


def _distance(a: np.ndarray) -> np.ndarray:
    """How far each pixel is from the background, in [0, 1]: ink of either polarity, any colour.

    Colour is premultiplied by alpha, so a transparent background is one colour whatever
    RGB it holds; the background is the median of the image's outer ring. Alpha counts
    as a channel too: black or white strokes on a transparent canvas are pure alpha.
    """
    has_alpha = a.shape[2] in (2, 4)
    if has_alpha and not _border(a[..., -1:]).any():
        # A transparent background (the canvas): colour premultiplied by 0 is 0, so the
        # distance is the alpha itself, whatever the pen's colour. The common case, kept fast.
        return a[..., -1] * np.float32(1 / 255)
    planes = np.moveaxis(a, 2, 0).astype(np.float32) * np.float32(1 / 255)  # (C, H, W): fast per-plane ops
    if has_alpha:  # premultiply: transparent pixels become (0, ..., 0, alpha 0)
        planes[:-1] *= planes[-1]
    bg = np.median(_border(np.moveaxis(planes, 0, 2)), axis=0)
    dist = np.abs(planes[0] - np.float32(bg[0]))
    for plane, level in zip(planes[1:], bg[1:]):
        np.maximum(dist, np.abs(plane - np.float32(level)), out=dist)
    return dist


def ink_map(image) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 where the ink is strongest, 0 for background and noise.

    Raises NoDigit if nothing differs enough from the background.
    """
    dist = _distance(_as_uint8(image))
    contrast = float(dist.max())
    if contrast < MIN_CONTRAST:
        raise NoDigit(BLANK)
    ink = dist * np.float32(1 / (contrast * (1 - NOISE_FLOOR))) - np.float32(NOISE_FLOOR / (1 - NOISE_FLOOR))
    return np.clip(ink, 0, 1, out=ink)


def _bbox(ink: np.ndarray, level: float | None = None):
    """(top, bottom, left, right), bottom/right exclusive, of pixels above ``level`` (``INK_LEVEL``
    unless given, read at call time like the other constants); None if none."""
    mask = ink > (INK_LEVEL if level is None else level)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 * area / perimeter, with the perimeter as total variation.

    For a long stroke of width w, area = w * length and perimeter = 2 * length. Blur does
    not change either sum much, so anti-aliased and crisp pens measure alike.
    """
    p = np.pad(ink, 1)
    gy, gx = np.diff(p, axis=0)[:, :-1], np.diff(p, axis=1)[:-1, :]
    perimeter = float(np.sqrt(gx * gx + gy * gy).sum())
    return 2.0 * float(ink.sum()) / max(perimeter, 1e-6)


# --- the recipe ------------------------------------------------------------------------------


def _resize(a: np.ndarray, size: tuple[int, int], box=None) -> np.ndarray:
    """float32 resize with Pillow; ``size`` is (width, height), ``box`` the source region.

    Lanczos anti-aliases when shrinking and keeps strokes crisp; on the drawn-digit set it
    read 0.3-0.5 points better than bilinear for every model. It rings slightly: clip after.
    """
    im = Image.fromarray(np.ascontiguousarray(a, np.float32))  # mode "F"
    return np.asarray(im.resize(size, Image.Resampling.LANCZOS, box=box), np.float32)


def _check_size(ink: np.ndarray, box) -> None:
    """Raise NoDigit for a stray mark: tiny next to the image, or a blob a few strokes across."""
    if box is None:
        raise NoDigit(BLANK)
    top, bottom, left, right = box
    extent = max(bottom - top, right - left)
    if extent < MIN_EXTENT * max(ink.shape):
        raise NoDigit("Only a tiny mark was found: draw a whole digit from 0 to 9 that fills most of the box, "
                      "or crop the photo to the digit.", "dot")
    if extent < MIN_ELONGATION * stroke_width(ink[top:bottom, left:right]):
        raise NoDigit("Only a dot or blob was found: draw a whole digit from 0 to 9 with a thinner line.", "dot")


def _full_strength(a: np.ndarray) -> np.ndarray:
    """Scale so that stroke cores reach 1, as in MNIST, then clip to [0, 1].

    The level is a high percentile of the ink, not its maximum: a hair-thin pen shrunk
    down is faint everywhere except where strokes cross, and Lanczos overshoots a little.
    """
    peak = a.max()
    if peak <= 0:
        return np.clip(a, 0, 1)
    level = np.percentile(a[a > 0.2 * peak], 90)
    return np.clip(a * np.float32(1 / level), 0, 1)


def _working(ink: np.ndarray, box) -> np.ndarray:
    """The ink's bounding box at a fixed resolution (longer side ``WORK``), on a wide margin."""
    top, bottom, left, right = box
    h, w = bottom - top, right - left
    scale = WORK / max(h, w)
    out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
    crop = _full_strength(_resize(ink, (out_w, out_h), box=(left, top, right, bottom)))
    return np.pad(crop, WORK)  # room for dilation and for the 28x28 frame around any centre


def _normalise_stroke(work: np.ndarray) -> np.ndarray:
    """Dilate thin pens and erode thick ones towards MNIST's stroke-to-size ratio.

    Kept because it measurably helps: on all 10,000 drawn digits (core.drawn) it lifts
    every model by 0.5-0.7 point, and thin pens by 1-2 points.
    """
    top, bottom, left, right = _bbox(work)
    width = stroke_width(work[top:bottom, left:right])
    extent = max(bottom - top, right - left)
    # A pen of width w adds w to the extent; solve w / (extent - width + w) = STROKE_RATIO.
    target = STROKE_RATIO * (extent - width) / (1 - STROKE_RATIO)
    if abs(width - target) <= STROKE_TOLERANCE * target:
        return work
    steps = round((target - width) / 2)  # each step moves both edges by a pixel
    steps = max(steps, -int((width - 2) // 2))  # never erode a stroke away
    return morph(work, 2 * steps)  # core.pixels counts pixels of width: two per step


def _frame(work: np.ndarray) -> np.ndarray:
    """Scale the ink's box to ``BOX`` pixels and cut the 28x28 frame centred on its mass."""
    top, bottom, left, right = _bbox(work)
    scale = BOX / max(bottom - top, right - left)
    mass = work.sum()
    cy = float(work.sum(1) @ np.arange(work.shape[0])) / mass
    cx = float(work.sum(0) @ np.arange(work.shape[1])) / mass
    # Output pixel CENTRE (index coordinates) must land on the centre of mass; Pillow's box
    # is in edge coordinates, where pixel i spans [i, i + 1].
    x0 = cx + 0.5 - (CENTRE + 0.5) / scale
    y0 = cy + 0.5 - (CENTRE + 0.5) / scale
    side = SIZE / scale
    return _full_strength(_resize(work, (SIZE, SIZE), box=(x0, y0, x0 + side, y0 + side)))


def to_mnist(image, normalize_stroke: bool = True) -> np.ndarray:
    """Any drawing or photo of a digit -> float32 (28, 28) in [0, 1], prepared like MNIST.

    ``image``: uint8 or float array (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4),
    either polarity, transparent or opaque background. Raises NoDigit for blank input or a
    stray mark, ImageError for an array that is not an image.
    """
    ink = ink_map(image)
    box = _bbox(ink)
    _check_size(ink, box)
    work = _working(ink, box)
    if normalize_stroke:
        work = _normalise_stroke(work)
    return _frame(work).astype(np.float32, copy=False)


MAX_SLANT = 1.0  # deslant straightens slants up to 45 degrees; beyond that it is more likely a stroke than a slant


def slant(x: np.ndarray) -> np.ndarray:
    """Each digit's slant from its second moments: horizontal shift of the ink per pixel down, (n,).

    mu11 / mu02 is the slope of the line that best fits the ink (x on y): positive leans the
    top to the right, as most right-handed writing does. x: float32 (n, 28, 28) or (28, 28).
    """
    x = np.asarray(x, np.float32).reshape(-1, SIZE, SIZE)
    r = np.arange(SIZE, dtype=np.float32)
    mass = np.maximum(x.sum((1, 2)), 1e-6)
    cy = (x.sum(2) @ r) / mass
    cx = (x.sum(1) @ r) / mass
    dy = r[None, :, None] - cy[:, None, None]
    dx = r[None, None, :] - cx[:, None, None]
    mu11 = (x * dy * dx).sum((1, 2))
    mu02 = np.maximum((x * dy * dy).sum((1, 2)), 1e-6)
    return -mu11 / mu02  # rows grow downwards: a top leaning right has x falling as the row index grows


def deslant(x: np.ndarray) -> np.ndarray:
    """Shear each 28x28 digit about its centre of mass so that it stands upright (moment-based).

    The shear moves each row sideways in proportion to its height above the centre of mass, so
    that centre stays where MNIST's recipe put it. Slants beyond ``MAX_SLANT`` are clipped.
    x: float32 (n, 28, 28) or (28, 28) in [0, 1]; returns the same shape.
    """
    x = np.asarray(x, np.float32)
    batch = x.reshape(-1, SIZE, SIZE)
    s = np.clip(slant(batch), -MAX_SLANT, MAX_SLANT)
    r = np.arange(SIZE, dtype=np.float32)
    cy = (batch.sum(2) @ r) / np.maximum(batch.sum((1, 2)), 1e-6)
    # output pixel -> source: src_col = col - s * (row - cy); row unchanged (centred coordinates, core.pixels)
    m = np.zeros((len(batch), 2, 3), np.float32)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = 1, -s, 13.5 + s * (cy - 13.5)
    m[:, 1, 1], m[:, 1, 2] = 1, 13.5
    return np.clip(affine(batch, m), 0, 1).reshape(x.shape)


def naive(image) -> np.ndarray:
    """The naive baseline: the whole image as grey, ink made bright, resized to 28x28.

    No cropping, scaling or centring: what a demo that skips MNIST's recipe would feed the
    models. Polarity is still fixed, so the comparison isolates the recipe's geometry.
    """
    dist = _distance(_as_uint8(image))
    peak = dist.max()
    out = _resize(dist / peak if peak > 0 else dist, (SIZE, SIZE), box=None)
    return np.clip(out, 0, 1).astype(np.float32, copy=False)
