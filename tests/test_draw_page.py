"""The Draw page's cheap answers: the HTML probability bars (dashboard.charts.probability_bars), the 28x28
image sent inline (dashboard.pictures.digit_html), and the page under AppTest with its canvas and answers
in one fragment: every model's card and bars, the answer in the bars, the image the models saw."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import SPECS

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
TITLES = {name: spec.title for name, spec in SPECS.items()}


def bar_heights(html: str) -> list[float]:
    return [float(h) for h in re.findall(r'class="pb" style="height:([\d.]+)%', html)]


def test_probability_bars_show_the_ten_probabilities():
    from dashboard.charts import probability_bars

    probs = np.array([0.001, 0.02, 0.15, 0.0, 0.0, 0.0, 0.0, 0.829, 0.0, 0.0])
    html = probability_bars(probs, "#1f77b4", height=100, true_digit=2)
    assert bar_heights(html) == pytest.approx(100 * probs, abs=0.051)
    assert html.count("background:#1f77b4") == 1 and 'height:82.9%;background:#1f77b4"' in html  # the answer
    assert re.findall(r"<span>([^<]*)</span>", html) == ["", "", "15%", "", "", "", "", "83%", "", ""]
    assert "<b>2 ✓</b>" in html and html.count("✓") == 1  # the true digit, marked
    assert 'aria-label="Probabilities, 2: 15%, 7: 83%"' in html
    assert 'title="digit 0: 0.10%"' in html
    assert html.count('style="height:100px"') == 10


def test_probability_bars_never_say_100_and_escape_the_colour():
    from dashboard.charts import probability_bars

    html = probability_bars([0.9996] + [0.0] * 9, 'red"><script>', true_digit=None)
    assert "&gt;99%" in html and "100%" not in html  # a rounded-up 100% nowhere, not even in the label
    assert "<script>" not in html and "✓" not in html
    assert bar_heights(probability_bars([1.5, -0.2] + [0] * 8, "red"))[:2] == [100.0, 0.0]  # clipped


def test_digit_html_carries_the_28x28_image():
    from dashboard.pictures import digit_html, to_uint8

    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    html = digit_html(image, 140, alt='a "digit"')
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
    np.testing.assert_array_equal(sent, to_uint8(image))  # the models' image itself, enlarged by the browser
    assert 'width="140"' in html and "pixelated" in html and 'alt="a &quot;digit&quot;"' in html


def test_answer_cards_show_each_models_answer_and_read_back():
    from types import SimpleNamespace

    from dashboard.charts import answer_cards, read_answer_cards

    sure, unsure = np.eye(10)[7] * 0.9999 + 0.00001, np.array([0.05] * 8 + [0.3, 0.3])
    models = [SimpleNamespace(title="ANN <b>&</b>", color="#e69f00"), SimpleNamespace(title="LeNet", color="#009e73")]
    block = answer_cards([(models[0], {"digit": 7, "probs": sure}), (models[1], {"digit": 9, "probs": unsure})],
                         per_row=3, height=80, true_digit=7)
    assert read_answer_cards(block, "<p>another element</p>") == {"ANN <b>&</b>": "7", "LeNet": "9"}
    assert "<b>&</b>" not in block and "ANN &lt;b&gt;&amp;&lt;/b&gt;" in block  # a title is text, never markup
    assert "&gt;99.9% sure" in block and "30.0% sure" in block  # never a rounded-up 100%
    assert block.count('class="pbars"') == 2 and block.count("✓") == 2  # each card's bars, the label marked
    assert "--per-row:3" in block and block.count("background:#009e73") == 2  # the dot and the answer's bar
    assert read_answer_cards("<div>no cards</div>") == {}


# --- the page under AppTest -------------------------------------------------------------------------
pytest.importorskip("streamlit.testing.v1")


@pytest.fixture
def draw_page(artifacts, fresh_caches):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(HOME, default_timeout=90).run()
    at.switch_page("views/draw.py").run()
    return at


def bars_of(at) -> list[str]:
    """Each answer card's HTML (its bars among it), in order."""
    return [card for h in at.get("html") for card in h.proto.body.split('<div class="answer" ')[1:]]


def test_test_digit_gets_a_card_and_bars_per_model(draw_page):
    at = draw_page
    from dashboard.charts import read_answer_cards

    at.segmented_control(key="source").set_value("Test-set example").run()
    assert not at.exception and not at.error
    cards = read_answer_cards(*(h.proto.body for h in at.get("html")))
    assert list(cards) == list(TITLES.values())
    bars = bars_of(at)
    assert len(bars) == 3
    for spec, bar, answer in zip(SPECS.values(), bars, cards.values()):
        assert f"background:{spec.color}" in bar  # in the model's own colour
        assert f'aria-label="Probabilities, {answer}: ' in bar or f", {answer}: " in bar
        assert bar.count("✓") == 1  # the test digit's label is known
        assert sum(bar_heights(bar)) == pytest.approx(100, abs=0.6)  # ten probabilities that add up
    seen = [h.proto.body for h in at.get("html") if "the 28x28 image the models saw" in h.proto.body]
    assert len(seen) == 1 and "data:image/png;base64," in seen[0]


def test_another_test_digit_reruns_without_an_error(draw_page):
    at = draw_page
    at.segmented_control(key="source").set_value("Test-set example").run()
    shown = {at.session_state["example"]}
    for _ in range(4):  # a button inside the fragment
        at.button[0].click().run()
        assert not at.exception and not at.error
        assert len(bars_of(at)) == 3
        shown.add(at.session_state["example"])
    assert len(shown) > 1
