"""Bad input, through every door: the Draw page's canvas, the upload, and the command line.

One table, ``CASES``: each row is an input and the answer expected for it, either a refusal
(``ImageError`` with a phrase of its message, or ``NoDigit`` with its reason and phrase) or
a digit. Canvas rows are RGBA arrays like streamlit-drawable-canvas returns; file rows are
bytes as the uploader hands them over, and the same bytes saved to a file (always named
.png, whatever they hold) for ``python -m core.predict``. The README shows this table.

Digits are checked against the committed, fully trained models; with only the tiny test
models, a digit row checks that each model answers with some digit.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tests/test_bad_input.py` prints the README's table
    sys.path.insert(0, str(ROOT))

from core import MODELS  # noqa: E402
from core.predict import predict_image  # noqa: E402
from core.preprocess import MAX_UPLOAD_BYTES, ImageError, NoDigit, read_image, to_mnist  # noqa: E402


# --- inputs ------------------------------------------------------------------------------------
def seven(w=280, h=280, box=None, pen=14, ink=0, bg=255) -> Image.Image:
    """A 7 drawn in ``box`` (default: the whole image), dark on light unless told."""
    im = Image.new("L", (w, h), bg)
    x0, y0, x1, y1 = box or (0, 0, w, h)
    bw, bh = x1 - x0, y1 - y0
    ImageDraw.Draw(im).line([(x0 + 0.22 * bw, y0 + 0.2 * bh), (x0 + 0.78 * bw, y0 + 0.2 * bh),
                             (x0 + 0.45 * bw, y0 + 0.85 * bh)], fill=ink, width=pen, joint="curve")
    return im


def encode(im: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def canvas(alpha: np.ndarray) -> np.ndarray:
    """What the canvas returns: white pen, the ink in alpha, transparent background."""
    rgba = np.full((*alpha.shape, 4), 255, np.uint8)
    rgba[..., 3] = alpha
    return rgba


def disc(radius: int, size: int = 280) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius**2, 255, 0).astype(np.uint8)


def animated_gif() -> bytes:
    frames = [seven(), seven(ink=255, bg=0)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def huge_png() -> bytes:
    """A real PNG photo-sized image, stored uncompressed: 5.6 MB, over the 5 MB limit."""
    ramp = np.add.outer(np.arange(1400), np.arange(1400)).astype(np.uint8)
    data = encode(Image.fromarray(np.stack([ramp] * 3, -1)), compress_level=0)
    assert len(data) > MAX_UPLOAD_BYTES
    return data


def alpha_only_seven() -> bytes:
    """A 7 that exists only in the alpha channel: black RGB everywhere, transparent background."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.asarray(seven(ink=255, bg=0))
    return encode(Image.fromarray(rgba, "RGBA"))


def jpeg_seven() -> bytes:
    return encode(seven().convert("RGB"), "JPEG", quality=85)


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # the README's wording
    door: str  # "canvas" (an RGBA array) or "file" (upload bytes, and a .png file for the CLI)
    make: object  # () -> array or bytes
    expect: str  # "ImageError", "NoDigit" or "digit"
    detail: object  # a phrase of the message, or the digit

    def answer(self) -> str:
        if self.expect == "digit":
            return f"reads as {self.detail}"
        return f"{self.expect}: \"…{self.detail}…\""


CASES = [
    Case("blank-canvas", "Blank canvas (nothing drawn)", "canvas",
         lambda: canvas(np.zeros((280, 280), np.uint8)), "NoDigit", "Nothing drawn"),
    Case("dot-canvas", "A single dot (one click of the pen)", "canvas",
         lambda: canvas(disc(10)), "NoDigit", "dot"),
    Case("painted-canvas", "Canvas painted over entirely", "canvas",
         lambda: canvas(np.full((280, 280), 255, np.uint8)), "NoDigit", "Nothing drawn"),
    Case("seven-canvas", "A 7 drawn on the canvas (control)", "canvas",
         lambda: canvas(np.asarray(seven(ink=255, bg=0))), "digit", 7),
    Case("blank-white", "Blank white image", "file",
         lambda: encode(Image.new("L", (280, 280), 255)), "NoDigit", "Nothing drawn"),
    Case("full-black", "Full black image", "file",
         lambda: encode(Image.new("L", (280, 280), 0)), "NoDigit", "Nothing drawn"),
    Case("dot-file", "A single dot on white", "file",
         lambda: encode(Image.fromarray(255 - disc(8))), "NoDigit", "dot"),
    Case("huge-file", "Huge image, 5.6 MB (over the 5 MB upload limit)", "file", huge_png, "ImageError", "MB"),
    Case("pixel-bomb", "5000x5000 pixels in a few kB (decompression bomb)", "file",
         lambda: encode(Image.new("1", (5000, 5000))), "ImageError", "megapixels"),
    Case("tiny-1x1", "Tiny image, 1x1 pixel", "file",
         lambda: encode(Image.new("L", (1, 1), 0)), "NoDigit", "Nothing drawn"),
    Case("text-as-png", "A text file named .png", "file",
         lambda: b"hello, this is not an image\n", "ImageError", "not an image"),
    Case("svg-as-png", "An SVG with a script, named .png", "file",
         lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "ImageError",
         "not an image"),
    Case("truncated-png", "A PNG cut short", "file",
         lambda: encode(seven())[:300], "ImageError", "corrupt or truncated"),
    Case("empty-file", "An empty file", "file", lambda: b"", "ImageError", "empty"),
    Case("jpeg-as-png", "A JPEG named .png (content decides, not the name)", "file", jpeg_seven, "digit", 7),
    Case("animated-gif", "Animated GIF (two frames)", "file", animated_gif, "ImageError", "Animated"),
    Case("png-16-bit", "16-bit greyscale PNG of a 7", "file",
         lambda: encode(Image.fromarray(np.asarray(seven()).astype(np.uint16) * 257)), "digit", 7),
    Case("transparent-only", "Fully transparent image", "file",
         lambda: encode(Image.new("RGBA", (280, 280), (255, 255, 255, 0))), "NoDigit", "Nothing drawn"),
    Case("alpha-only-seven", "A 7 only in the alpha channel (transparent background)", "file",
         alpha_only_seven, "digit", 7),
    Case("wide-digit", "Very wide image, 3000x300, digit as tall as the image", "file",
         lambda: encode(seven(3000, 300, box=(1350, 10, 1630, 290), pen=20)), "digit", 7),
    Case("wide-small-digit", "Very wide image, 4000x200, small digit in the middle", "file",
         lambda: encode(seven(4000, 200, box=(1900, 25, 2050, 175), pen=12)), "NoDigit", "tiny mark"),
    Case("wide-blank", "Very wide blank strip, 10000x1", "file",
         lambda: encode(Image.new("L", (10000, 1), 0)), "NoDigit", "Nothing drawn"),
]
FILE_CASES = [c for c in CASES if c.door == "file"]


# --- models and the command line, once ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained(best_artifacts):
    """(artifacts folder, models, whether digits are checked)."""
    from core import load_models

    folder, fully_trained = best_artifacts
    return folder, load_models(folder), fully_trained


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    paths = {}
    for case in FILE_CASES:
        paths[case.id] = folder / f"{case.id}.png"  # every file claims to be a PNG
        paths[case.id].write_bytes(case.make())
    return paths


@pytest.fixture(scope="module")
def cli(trained, files):
    """``python -m core.predict`` over every file at once: {case id: its JSON line}, and the exit code."""
    folder, _, _ = trained
    run = subprocess.run([sys.executable, "-m", "core.predict", *map(str, files.values()), "--json",
                          "--artifacts", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    by_path = {line["path"]: line for line in lines}
    return {case_id: by_path[str(path)] for case_id, path in files.items()}, run.returncode


def _check_result(case: Case, result: dict, check_digits: bool) -> None:
    digits = [p["digit"] for p in result["predictions"].values()]
    assert list(result["predictions"]) == list(MODELS)
    assert all(isinstance(d, int) and 0 <= d <= 9 for d in digits)
    assert result["image"].shape == (28, 28)
    if check_digits:
        assert digits == [case.detail] * len(MODELS), f"{case.what}: read as {digits}"


def _check_refusal(case: Case, error: Exception) -> None:
    assert type(error).__name__ == case.expect, f"{case.what}: {type(error).__name__}: {error}"
    assert case.detail.lower() in str(error).lower(), f"{case.what}: {error}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, trained, files, cli):
    _, models, check_digits = trained
    sources = [case.make()]
    if case.door == "file":
        sources += [files[case.id]]  # the upload's bytes, and the same file by path
    for source in sources:
        if case.expect == "digit":
            _check_result(case, predict_image(source, models), check_digits)
            continue
        with pytest.raises((ImageError, NoDigit)) as e:
            predict_image(source, models)
        _check_refusal(case, e.value)
    if case.door == "file":
        # The two steps on their own: read_image refuses only what is not a usable image;
        # to_mnist refuses what holds no digit.
        if case.expect == "ImageError":
            with pytest.raises(ImageError):
                read_image(case.make())
        else:
            image = read_image(case.make())
            assert image.dtype == np.uint8 and image.ndim in (2, 3)
            if case.expect == "NoDigit":
                with pytest.raises(NoDigit):
                    to_mnist(image)
        # And the command line: one JSON line for this file, an error or the three answers.
        lines, code = cli
        line = lines[case.id]
        assert code == 1  # some files in the batch failed
        if case.expect == "digit":
            assert set(line) == {"path", "predictions", "unusual"}, line
            got = [p["digit"] for p in line["predictions"].values()]
            if check_digits:
                assert got == [case.detail] * len(MODELS), line
        else:
            assert set(line) == {"path", "error"}, line
            assert case.detail.lower() in line["error"].lower(), line


def test_no_digit_reasons():
    """The canvas's two kinds of 'no digit': nothing at all, or a stray dot."""
    with pytest.raises(NoDigit) as blank:
        to_mnist(canvas(np.zeros((280, 280), np.uint8)))
    with pytest.raises(NoDigit) as dot:
        to_mnist(canvas(disc(10)))
    assert (blank.value.reason, dot.value.reason) == ("blank", "dot")


def readme_table() -> str:
    """The table as the README shows it: ``python tests/test_bad_input.py`` prints it."""
    rows = ["| Input | Through | Expected answer |", "|---|---|---|"]
    for c in CASES:
        door = "canvas" if c.door == "canvas" else "upload, CLI"
        rows.append(f"| {c.what} | {door} | {c.answer()} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(readme_table())
