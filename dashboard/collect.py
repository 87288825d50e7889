"""The Draw page's save box, below the answers: the visitor confirms ("Yes, it's a 7") or corrects ("No,
it's a ..." and a digit) and saves the drawing to the collection; nothing is saved without that click.
Undo takes back this session's own saves. The box never touches the database until a button is
pressed, so drawing and predicting work whatever state the database is in. Below the drawing area, the
collection row: which collection saves go to (typed, or from the address), a link to it, and what a save
stores. It does not change with a stroke, so it sits outside the page's fragment and is not redrawn by one.

    collect.offer(result, committed_entries)    # in the fragment; result: core.predict.predict_image's
    collect.collection_row()                    # once per page run
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.drawings import BadDrawing, DrawingsError, LimitReached
from dashboard import drawings_db
from dashboard.pictures import to_uint8

DIGITS = list(range(10))
MESSAGE_KEY = "drawings_message"  # (kind, text) from the last button, shown once
CHOICE_KEY = "drawings_choice_problem"  # why a typed collection name was not taken, shown once
FIX_KEY = "drawings_fix"
SHOWN_KEY = "drawings_shown"  # the drawing the box was last shown for
STORED = ("Saving stores the 28×28 image the models saw, the digit you say it is, each model's answer and "
          "probabilities, the time and the collection's name: no personal data, no IP address, no free text.")


def _save(label: int, image, answers: dict, name: str) -> None:
    try:
        drawings_db.save(label, image, answers, name)
    except LimitReached as e:
        st.session_state[MESSAGE_KEY] = ("warning", f"Not saved: {e}")
    except BadDrawing as e:
        st.session_state[MESSAGE_KEY] = ("error", f"Not saved: {e}")
    except DrawingsError as e:
        st.session_state[MESSAGE_KEY] = ("error", drawings_db.describe(e, "Not saved"))


def _undo(count: int | None) -> None:
    try:
        n = drawings_db.undo(count)
        st.session_state[MESSAGE_KEY] = ("info", f"Removed {n} of your saved drawings." if n != 1 else
                                         "Removed your last saved drawing.")
    except DrawingsError as e:
        st.session_state[MESSAGE_KEY] = ("error", drawings_db.describe(e, "Not undone"))


def _choose() -> None:
    problem = drawings_db.choose(st.session_state.get("drawings_collection_box", ""))
    if problem:
        st.session_state[CHOICE_KEY] = f"That collection name was not taken: {problem}"


def _show_message() -> None:
    kind, text = st.session_state.pop(MESSAGE_KEY, (None, None))
    if kind:
        icon = {"error": ":material/error:", "warning": ":material/block:", "info": ":material/undo:"}[kind]
        getattr(st, kind)(text, icon=icon)


def offer(result: dict, committed) -> None:
    """The save box for this prediction (``committed``: the committed models' entries, whose answers are saved)."""
    answers = {e.key: result["predictions"][e.key] for e in committed if e.key in result["predictions"]}
    if not answers:
        return
    image = to_uint8(result["image"])
    fp = drawings_db.fingerprint(image)
    guess = int(np.argmax(sum(np.asarray(a["probs"], np.float64) for a in answers.values())))  # the models' joint answer
    name, _ = drawings_db.collection()
    if st.session_state.get(SHOWN_KEY) != fp:  # a new drawing: no correction picked yet
        st.session_state[SHOWN_KEY] = fp
        st.session_state[FIX_KEY] = None
    mine = drawings_db.saved()
    this = next((s for s in reversed(mine) if s["fp"] == fp), None)

    with st.container(border=True, key="drawings_box"):
        if this is not None:
            st.success(f"Saved as a **{this['label']}** in the collection **{this['collection']}** "
                       f"(drawing #{this['id']}, {this['size']:,} in the collection). Draw another!",
                       icon=":material/check_circle:")
        else:
            st.markdown(f"**Add it to your class's own test set**, the collection **{name}**. Is it a {guess}?")
            yes, no = st.columns([2, 5], vertical_alignment="bottom")
            yes.button(f"Yes, it's a {guess}", key="drawings_yes", type="primary", icon=":material/check:",
                       on_click=_save, args=(guess, image, answers, name))
            with no:
                fix = st.pills("No, it's a …", DIGITS, key=FIX_KEY)
                if fix is not None:
                    st.button(f"Save as {fix}", key="drawings_fix_save", icon=":material/save:",
                              on_click=_save, args=(int(fix), image, answers, name))
        _show_message()
        if mine:
            last, every = st.columns(2)
            last.button("Undo my last save", key="drawings_undo", icon=":material/undo:", on_click=_undo, args=(1,))
            if len(mine) > 1:
                every.button(f"Remove all {len(mine)} of my saves", key="drawings_undo_all",
                             icon=":material/delete_sweep:", on_click=_undo, args=(None,))
            st.caption(f"You have saved {len(mine)} drawing{'s' if len(mine) != 1 else ''} in this visit. Only you "
                       "can take them back, until you close this tab.")


def collection_row() -> None:
    """Which collection the Draw page saves to, a link to its drawings, and what a save stores."""
    name, problem = drawings_db.collection()
    with st.container(border=True, key="drawings_collection"):
        if problem:  # the address asked for a name that is not allowed
            st.warning(problem, icon=":material/link_off:")
        if CHOICE_KEY in st.session_state:
            st.warning(st.session_state.pop(CHOICE_KEY), icon=":material/block:")
        where, link = st.columns([2, 3], vertical_alignment="bottom")
        st.session_state["drawings_collection_box"] = name  # the box follows the address and the other page
        where.text_input("Collection your drawings are saved to", key="drawings_collection_box", max_chars=32,
                         on_change=_choose, help="A class's own collection: letters, digits and dashes, like "
                         "room-12. A teacher can open the app with ?collection=room-12 in the address so everyone "
                         "saves to it.")
        link.page_link("views/collection.py", label=f"See the drawings in {name}", icon=":material/collections:",
                       query_params={"collection": name})
        st.caption(STORED)
