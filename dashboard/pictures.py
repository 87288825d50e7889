"""Pictures: digits as crisp images, sheets of digits, and arrays (activations, weights, saliency)
turned into colour images: colour maps, mosaics, overlays. NumPy and Pillow only."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def to_uint8(image) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    return a


def digit_image(image, size: int = 112) -> Image.Image:
    """A 28x28 digit (uint8, or float in [0, 1]) scaled up with hard pixel edges."""
    return Image.fromarray(to_uint8(image), "L").resize((size, size), Image.Resampling.NEAREST)


def digit_html(image, size: int, alt: str = "") -> str:
    """A digit as an ``<img>`` that carries its own 28x28 PNG (a few hundred bytes) and is enlarged to
    ``size`` pixels by the browser, with hard pixel edges: no image file to store, serve and fetch."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image), "L").save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" width="{size}" height="{size}" alt="{html.escape(alt)}" '
            'style="image-rendering:pixelated;display:block">')


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def montage(images, ncols: int, scale: int = 3, gap: int = 4, row_labels=None, col_labels=None) -> Image.Image:
    """Digits on one black sheet, crisp, with optional labels: reads the same in light and dark themes."""
    images = [to_uint8(im) for im in images]
    nrows = -(-len(images) // ncols)
    cell = 28 * scale
    left = cell // 2 + gap if row_labels is not None else 0
    top = cell // 3 + gap if col_labels is not None else 0
    w = left + ncols * cell + (ncols + 1) * gap
    h = top + nrows * cell + (nrows + 1) * gap
    sheet = Image.new("L", (w, h), 0)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        sheet.paste(Image.fromarray(im, "L").resize((cell, cell), Image.Resampling.NEAREST),
                    (left + gap + c * (cell + gap), top + gap + r * (cell + gap)))
    draw = ImageDraw.Draw(sheet)
    font = _font(max(12, cell // 3))
    for r, label in enumerate(row_labels or []):
        draw.text((left // 2, top + gap + r * (cell + gap) + cell // 2), str(label), fill=170, font=font, anchor="mm")
    for c, label in enumerate(col_labels or []):
        draw.text((left + gap + c * (cell + gap) + cell // 2, top // 2 + gap // 2), str(label), fill=170, font=font,
                  anchor="mm")
    return sheet


_CMAPS = {  # anchor colours, low to high
    "ink": [(255, 255, 255), (0, 0, 0)],  # white paper, black ink
    "heat": [(255, 255, 255), (254, 217, 118), (253, 141, 60), (227, 26, 28), (128, 0, 38)],
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "diverging": [(5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31)],
}
BACKGROUND = (230, 230, 230)  # fills the gaps (NaN) between mosaic tiles


def colorize(a, cmap: str = "heat", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D array -> RGB uint8 (h, w, 3). NaN becomes the light grey background.

    "diverging" is centred on 0 (blue negative, red positive) unless vmin/vmax are given.
    """
    a = np.asarray(a, np.float32)
    finite = a[np.isfinite(a)]
    if cmap == "diverging" and vmin is None and vmax is None:
        m = float(np.abs(finite).max()) if finite.size else 1.0
        vmin, vmax = -m, m
    vmin = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    vmax = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    t = np.clip((a - vmin) / (vmax - vmin if vmax > vmin else 1.0), 0, 1)
    anchors = np.asarray(_CMAPS[cmap], np.float32)
    pos = np.nan_to_num(t) * (len(anchors) - 1)
    i = np.minimum(pos.astype(np.int32), len(anchors) - 2)
    f = (pos - i)[..., None]
    rgb = anchors[i] * (1 - f) + anchors[i + 1] * f
    rgb[~np.isfinite(a)] = BACKGROUND
    return np.round(rgb).astype(np.uint8)


def mosaic(tiles, cols: int, pad: int = 1, normalize: str = "each") -> np.ndarray:
    """(k, h, w) tiles -> one 2-D array in a grid of ``cols`` columns, NaN between tiles.

    normalize: "each" scales every tile to its own largest absolute value (patterns),
    "global" keeps them comparable, "none" leaves values as they are.
    """
    tiles = np.asarray(tiles, np.float32)
    k, h, w = tiles.shape
    if normalize == "each":
        m = np.abs(tiles).reshape(k, -1).max(1)
        tiles = tiles / np.where(m > 0, m, 1)[:, None, None]
    elif normalize == "global":
        m = float(np.abs(tiles).max()) or 1.0
        tiles = tiles / m
    rows = -(-k // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan, np.float32)
    for j in range(k):
        r, c = divmod(j, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tiles[j]
    return out


def overlay(x28, heat, signed: bool = False, alpha: float = 0.9) -> np.ndarray:
    """The digit in light grey on white with a saliency map on top: RGB uint8 (28, 28, 3).

    Unsigned: red, stronger where ``heat`` is larger. Signed: red where positive (pushed
    towards the answer), blue where negative. Scaled to the 99.5th percentile of |heat|,
    so one extreme pixel does not wash the rest out, with a gamma of 0.6 so
    that middling values are visible too.
    """
    x = np.clip(np.asarray(x28, np.float32), 0, 1)[..., None]
    heat = np.asarray(heat, np.float32)
    top = float(np.percentile(np.abs(heat), 99.5)) or float(np.abs(heat).max()) or 1.0
    h = np.clip(heat / top, -1, 1)[..., None]
    paper = 255 - 70 * x  # white page, ink in light grey so the shape stays visible
    red, blue = np.array([200, 16, 46], np.float32), np.array([33, 102, 172], np.float32)
    w = alpha * np.abs(h) ** 0.6  # a gamma below 1 lifts the middle values into view
    colour = np.where(h >= 0, red, blue) if signed else red
    rgb = paper * (1 - w) + colour * w
    return np.round(rgb).astype(np.uint8)


def upscale(rgb, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a ``factor`` x ``factor`` block."""
    return np.repeat(np.repeat(np.asarray(rgb), factor, 0), factor, 1)
