"""Draw: draw a digit (or upload an image, or pick a test digit) and see all three models read it the
moment the stroke ends: each model's digit, confidence and ten probabilities, whether they agree, and
the 28x28 image the models actually saw. The models run in NumPy (the Keras ones too: see
``core.models.keras_numpy``), so the server never loads TensorFlow.

Everything below the title but the collection's name is one fragment (``st.fragment``): a stroke, a button
or a new upload reruns only that, not the page around it. The answers are one HTML block of cards with plain
HTML bars, and inline 28x28 images: cheap to build, send and draw (a class of twenty drawing at once shares
one server's two cores), and made of elements the page already showed before the first stroke, so that
stroke is not slowed by the browser fetching and mounting new kinds of element.
"""

import html
import random

import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit_drawable_canvas import st_canvas

from core import ArtifactError
from core.pixels import TTA_WARPS, views
from core.predict import predict_image
from core.preprocess import MAX_UPLOAD_BYTES, ImageError, NoDigit

# collect imports SQLAlchemy (half a second): here, with the page, rather than at the first stroke.
from dashboard import cache, collect, entries, ui
from dashboard.charts import ANSWERS_CSS, BARS_CSS, answer_cards
from dashboard.pictures import digit_html

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
SOURCES = ["Draw", "Upload an image", "Test-set example"]
CANVAS = 280
DRAWN_KEY = "drawn_digit"  # the Inside page offers the last digit read here as "Your drawing"
DRAWING_KEY, UNDONE_KEY, SET_KEY, STALE_KEY = "canvas_drawing", "canvas_undone", "canvas_set", "canvas_stale"
BAR_HEIGHT = 120  # px: each model's probability bars
# The canvas sends a drawing 200 ms after the pen lifts (a debounce meant for dragging shapes), which was most
# of the wait for an answer. A digit's stroke is over when the pen lifts, so this presses the canvas's own
# "Update the app" button then, and the canvas sends at once (and drops its pending send). Only after a stroke
# that began on the canvas; if a later canvas lacks the button, nothing happens and its own send still comes.
SEND_ON_PEN_LIFT = """<script>
if (!window.__drawSendOnLift) {
  window.__drawSendOnLift = true;
  let root = null;
  const down = (ev) => {
    const el = ev.composedPath().find(e => e.classList && e.classList.contains("upper-canvas"));
    root = el ? el.getRootNode() : null;
  };
  const up = () => {
    if (!root) return;
    const r = root;
    root = null;
    // After the canvas's own pen-lift handlers (and their microtasks) have recorded the stroke.
    setTimeout(() => r.querySelector('button[title="Update the app with this drawing"]')?.click(), 0);
  };
  for (const kind of ["pointerdown", "mousedown", "touchstart"]) window.addEventListener(kind, down, true);
  for (const kind of ["pointerup", "mouseup", "touchend"]) window.addEventListener(kind, up, true);
}
</script>"""


def canvas_buttons(canvas) -> None:
    """Undo, redo and clear as ordinary buttons under the canvas: the canvas's own toolbar shows on hover only,
    so never on a touchscreen. They give the canvas a new ``initial_drawing``, which it loads and sends back."""
    drawing = canvas.json_data or {}
    objects = list(drawing.get("objects", []))
    undone = st.session_state.setdefault(UNDONE_KEY, [])
    if STALE_KEY in st.session_state and objects == st.session_state[STALE_KEY]:
        objects = list(st.session_state[DRAWING_KEY]["objects"])  # the canvas has not sent the change back yet
    else:
        st.session_state.pop(STALE_KEY, None)
        if len(objects) != st.session_state.get(SET_KEY, len(objects)):  # drawn on since: nothing left to redo
            undone.clear()
    st.session_state[SET_KEY] = len(objects)
    with st.container(horizontal=True, gap="small"):
        undo = st.button("Undo", icon=":material/undo:", key="canvas_undo", disabled=not objects)
        redo = st.button("Redo", icon=":material/redo:", key="canvas_redo", disabled=not undone)
        clear = st.button("Clear", icon=":material/delete:", key="canvas_clear", disabled=not objects)
    if undo:
        undone.append(objects.pop())
    elif redo:
        objects.append(undone.pop())
    elif clear:
        undone.clear()
        objects = []
    else:
        return
    revision = (st.session_state.get(DRAWING_KEY) or {}).get("revision", 0) + 1  # always a new drawing to load
    st.session_state[DRAWING_KEY] = {**drawing, "objects": objects, "revision": revision}
    st.session_state[SET_KEY] = len(objects)
    st.session_state[STALE_KEY] = list(drawing.get("objects", []))  # what the canvas says until it has loaded it
    rerun_fragment()


def rerun_fragment() -> None:
    """Rerun the fragment only; a full run (the first, or a test's) cannot, so it reruns the page."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


@st.fragment
def draw_and_read(shown: list) -> None:
    """The input (canvas, upload or test digit) and the models' answers: rerun alone on every stroke."""
    left, right = st.columns([2, 3], gap="large")
    image, truth = None, None
    with left:
        source = st.segmented_control("Input", SOURCES, default=SOURCES[0], required=True, key="source",
                                      label_visibility="collapsed")
        if source == "Draw":
            pen = st.slider("Pen width", 8, 40, 20, key="pen", help="MNIST's strokes are about 2 pixels of 28; "
                            "any width works, as the stroke is brought to that thickness.")
            canvas = st_canvas(stroke_width=pen, stroke_color="#FFFFFF", background_color="#000000",
                               height=CANVAS, width=CANVAS, drawing_mode="freedraw", update_streamlit=True,
                               return_image_data=True, initial_drawing=st.session_state.get(DRAWING_KEY),
                               key="canvas")
            canvas_buttons(canvas)
            image = canvas.image_data
            empty_message = "Draw a digit on the black square: the predictions appear when you lift the pen."
        elif source == "Upload an image":
            upload = st.file_uploader("An image of one digit", type=UPLOAD_TYPES, key="upload",
                                      max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                                      help="Dark on light or light on dark, any size; a photo of paper works.")
            image = upload.getvalue() if upload is not None else None
            empty_message = "Upload a picture of a single handwritten digit (PNG, JPEG, GIF, BMP or WebP, up to " \
                            f"{MAX_UPLOAD_BYTES // 2**20} MB)."
        else:
            try:
                sample = cache.read("sample")
            except ArtifactError as e:
                ui.show_artifact_error(e)
                sample = None
            if sample is not None:
                if st.button("Another test digit", icon=":material/shuffle:") or "example" not in st.session_state:
                    st.session_state.example = random.randrange(len(sample["labels"]))
                i = st.session_state.example % len(sample["labels"])
                image, truth = sample["images"][i], int(sample["labels"][i])
                st.html(digit_html(image, CANVAS, alt=f"test digit {truth}"))
                st.caption(f"Test digit #{int(sample['index'][i])}, labelled {truth}")
            empty_message = "The bundled test digits are missing, so there is no example to show."

    # On a phone the columns stack: the answer (the verdict, first in the right column) comes right under the
    # canvas and its buttons, on the same screen. (A separate one-line answer there said it twice.)
    result = None
    with right:
        if image is None:
            st.info(empty_message, icon=":material/draw:")
        else:
            models = {e.key: e.model for e in shown}  # each a cache look-up: once per rerun
            try:
                result = predict_image(image, models)
            except NoDigit as e:
                st.info(str(e), icon=":material/draw:")
            except ImageError as e:
                st.error(f"That image was refused: {e}", icon=":material/block:")
        if result is not None and source != "Test-set example":  # a test digit is not the visitor's own
            st.session_state[DRAWN_KEY] = result["image"]
    if result is not None:
        with right:
            answers(shown, models, result, truth)
            if source != "Test-set example":  # the visitor's own digit: offer to save it
                collect.offer(result, [e for e in shown if e.committed])


def warp_name(deg: float, shear: float, size: float) -> str:
    """A test-time warp in words, as it looks: "turned 8° anticlockwise", "slanted right"."""
    words = []
    if deg:
        words.append(f"turned {abs(deg):g}° {'anticlockwise' if deg < 0 else 'clockwise'}")
    if shear:
        words.append(f"slanted {'left' if shear < 0 else 'right'}")
    if size:
        words.append("larger" if size < 0 else "smaller")
    return ", ".join(words) or "as it is"


def answers(shown: list, models: dict, result: dict, truth: int | None) -> None:
    """Whether the models agree, each model's card, and the 28x28 image they saw."""
    committed = [e for e in shown if e.committed]
    digits = {e.key: result["predictions"][e.key]["digit"] for e in committed}
    label = f" The label says {truth}." if truth is not None else ""
    if len(digits) == 1:  # the only committed model that loaded: named, never "the model agree"
        said = f"{committed[0].title} (the only model that loaded) says: it's a **{next(iter(digits.values()))}**."
    else:
        count = {2: "Both models", 3: "All three models"}.get(len(digits), f"All {len(digits)} models")
        said = f"{count} agree: it's a **{next(iter(digits.values()), '')}**."
    if result["unusual"]:  # noise, a photo, several digits: the models would still name a digit
        st.warning(result["unusual"] + label, icon=":material/help:")
    elif len(set(digits.values())) == 1:
        st.success(said + label, icon=":material/check_circle:")
    elif digits:
        said = ", ".join(f"{e.short} says **{digits[e.key]}**" for e in committed)
        st.warning(f"The models disagree: {said}.{label}", icon=":material/help:")
    per_row = max(3, len(committed))
    mine = [e for e in shown if not e.committed]
    for group in (committed, mine):
        if group is mine and mine:
            st.caption("**Your models (this session)**, trained on the Train page. The banner above is about "
                       "the committed models only.")
        if group:
            st.html(answer_cards([(e, result["predictions"][e.key]) for e in group], per_row, BAR_HEIGHT, truth))
    raw = [e.title for e in shown if getattr(models[e.key], "tta_temperature", None) is None]
    note = ("Each model reads your digit five times, as drawn and as the four copies below, and averages "
            "(test-time augmentation: people's digits are read a little better that way). Confidences are calibrated: "
            "the average is softened or sharpened by a temperature fitted on held-out digits, so \"90% sure\" is "
            "right about 90% of the time on MNIST (see Calibration)."
            + (f" Not calibrated: {', '.join(raw)}." if raw else ""))
    copies = "".join(digit_html(v, 42, alt=f"the copy {warp_name(*w)}")
                     for v, w in zip(views(result["image"][None])[0, 1:], TTA_WARPS[1:]))
    # One element for the note, the image and its explanation: less to send and draw on every stroke.
    st.html(f'<p class="answers-note">{html.escape(note)}</p><div class="answers-seen">'
            f'{digit_html(result["image"], 140, alt="the 28x28 image the models saw")}<div><p><b>What the models saw.</b> '
            "Your input cropped to the ink, scaled so its longer side is 20 pixels, centred by its centre of mass in "
            "a 28×28 frame and its stroke evened out: the recipe used to make MNIST, so a drawing looks like the "
            "digits the models learnt from. The four copies each model also reads, turned and slanted:</p>"
            f'<p class="answers-copies">{copies}</p></div></div>')


st.title("Draw a digit")
st.markdown("Draw one digit, 0 to 9, large and in the middle. All three models read it as soon as you lift "
            "the pen, after it is cropped, scaled and centred the way MNIST's digits were.")
ui.require_artifacts()
with st.spinner("Loading the three models…"):
    shown = entries.listed("model")
if not shown:
    st.stop()
# Outside the fragment: sent once per page, not once per stroke.
st.html(BARS_CSS + ANSWERS_CSS + SEND_ON_PEN_LIFT, unsafe_allow_javascript=True)
draw_and_read(shown)
collect.collection_row()  # outside the fragment: which collection saves go to does not change with a stroke
