"""Train: pick a model and its settings, press Train and watch it learn, epoch by epoch.

Training runs in its own low-priority worker process (core.jobs.TrainingJob, through the models' own fit,
as ``python -m core.train`` does), so the server keeps answering the other pages; the page polls it. The
result is this session's own model: it joins the committed three on the other pages until the session
ends, and is never saved. The limits come from the environment or Streamlit secrets (core.jobs.configure).
"""

import streamlit as st

from core import MODELS, SPECS, ArtifactError, jobs, model_class
from core.data import how_to_point
from dashboard import cache, entries, server_guard, session
from dashboard.charts import CURVES, learning_curves

SIZE_STEPS = (500, 1000, 2000, 5000, 10_000, 20_000, 55_000)
RATES = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2]
POLL_SECONDS = 1.0


def secret_limits() -> dict:
    """Training limits set in Streamlit secrets (top-level keys named like the environment variables)."""
    names = [var for var, *_ in jobs.LIMIT_VARIABLES.values()]
    try:
        return {var: st.secrets[var] for var in names if var in st.secrets}
    except Exception:  # no secrets file, or one that does not parse: as if none
        return {}


def sizes() -> list[int]:
    """Only what this server accepts (core.jobs' limits): a slider never offers a value that is always refused."""
    return sorted({n for n in SIZE_STEPS if jobs.MIN_SUBSET <= n <= jobs.MAX_SUBSET} | {jobs.MAX_SUBSET})


def committed_accuracy(name) -> float | None:
    try:
        return cache.read("metrics", name)["test_accuracy"]
    except ArtifactError:
        return None


def show_curves(history, label, color, reference, key):
    """Loss and accuracy per epoch, training and validation, side by side."""
    if not history:
        st.caption("The curves appear after the first epoch.")
        return
    for col, (what, (title, _, hint)) in zip(st.columns(2), CURVES.items()):
        fig = learning_curves([(label, color, history)], what, f"{title.split(' (')[0]} ({hint.lower()})",
                              height=300, reference=reference if what == "accuracy" else None)
        col.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key=f"{key}-{what}")


def watch(job, shown_epochs: int):
    """Progress and the Stop button of a running job; reruns on a timer until it ends. The curves are drawn
    by the page, outside this fragment: a new epoch (or the end) reruns the page, so the charts are built
    once an epoch instead of every second, in the server's interpreter that every visitor shares."""
    info = job.progress()
    if job.done or info["epoch"] != shown_epochs:
        st.rerun()  # the whole page: new curves, or the result, and the timer stops
    st.markdown(f"**Training {SPECS[job.model_name].title}** on {job.subset:,} images")
    label = info["message"]
    if info["state"] == "running":
        label = f"Epoch {min(info['epoch'] + 1, info['epochs'])} of {info['epochs']}"
        if info["epoch"] >= 1:  # time per epoch so far -> time left
            label += f" · about {info['seconds'] / info['epoch'] * (info['epochs'] - info['epoch']):.0f} s left"
    st.progress(info["fraction"], text=label)
    if st.button("Stop", icon=":material/stop_circle:", key="stop", disabled=info["state"] != "running",
                 help="Stop after the current batch and keep what the model has learnt so far."):
        job.stop()
        st.rerun(scope="fragment")


def settings_form():
    """The controls; returns (model name, overrides, subset)."""
    c1, c2, c3 = st.columns(3)
    with c1:
        name = st.selectbox("Model", list(MODELS), format_func=lambda n: SPECS[n].title, key="train_model")
        defaults = model_class(name).Settings().train
        options = sizes()
        subset = st.select_slider("Training images", options, value=min(5000, options[-1]), key="train_subset",
                                  format_func=lambda n: f"{n:,}",
                                  help="A random sample of MNIST's 55,000 training digits.")
    with c2:
        if jobs.MAX_EPOCHS > 1:
            epochs = st.slider("Epochs", 1, jobs.MAX_EPOCHS, min(jobs.DEFAULT_EPOCHS, jobs.MAX_EPOCHS),
                               key="train_epochs", help="One epoch = one pass over all the training images.")
        else:  # a slider needs two values
            epochs = 1
            st.caption("Epochs: 1, this server's limit.")
        batch = st.select_slider("Batch size", jobs.BATCH_SIZES, value=defaults.batch_size, key=f"train_batch_{name}",
                                 help="Images per weight update: small batches make more, noisier steps.")
    with c3:
        rate = st.select_slider("Learning rate", RATES, value=defaults.lr, key=f"train_lr_{name}",
                                format_func=lambda r: f"{r:g}",
                                help="How big each step is. Too small learns slowly; too big jumps around. "
                                     "It shrinks to zero over the run (cosine schedule).")
        augment = st.toggle("Augmentation", value=defaults.augment, key="train_augment",
                            help="Each epoch, every digit is randomly rotated, slanted, resized, moved and its "
                                 "pen width changed: harder to learn, but better at new handwriting.")
    return name, {"epochs": epochs, "batch_size": batch, "lr": rate, "augment": augment}, subset


def show_session_models():
    mine = [e for e in entries.listed("metrics") if not e.committed]
    if not mine:
        return
    st.subheader("Your models in this session")
    st.caption("They appear beside the committed models on the other pages until you close this tab. "
               "Nothing is saved: to keep a model, train it with `python -m core.train` on your own machine.")
    for i, e in enumerate(reversed(mine)):
        m, t = e.metrics, e.settings["train"]
        ref = committed_accuracy(e.name)
        with st.container(border=True):
            a, b = st.columns([3, 1])
            with a:
                st.markdown(f"<span style='color:{e.color}'>●</span> "
                            f"**{e.short}**: {SPECS[e.name].title}", unsafe_allow_html=True)
                st.caption(f"{m.get('train_size', 0):,} images · {m.get('epochs')} epoch(s)"
                           f"{' (stopped early)' if e.stopped_early else ''} · batch {t['batch_size']} · "
                           f"learning rate {t['lr']:g} · augmentation {'on' if t['augment'] else 'off'} · "
                           f"{m['train_seconds']:.{1 if m['train_seconds'] < 10 else 0}f} s")
            delta = None if ref is None else f"{100 * (m['test_accuracy'] - ref):+.1f} pp vs committed"
            b.metric("Test accuracy", f"{m['test_accuracy']:.1%}", delta=delta, delta_color="off")
            if i == 0:
                with st.expander("Learning curves", expanded=True):
                    show_curves(e.history, e.short, e.color, ref, e.key)
            if st.button("Remove", key=f"remove-{e.key}", icon=":material/delete:"):
                session.remove(e.key)
                st.rerun()


# --- the page -----------------------------------------------------------------------------------
st.title("Train a model")
st.markdown("Pick a model and its settings, press **Train**, and watch it learn: the loss falls and the accuracy "
            "climbs epoch by epoch. Stop whenever you like: the model keeps what it has learnt. "
            "The result is **your own model** for this session, shown next to the committed ones on the other pages.")

misconfigured = jobs.configure(secret_limits())
if cache.full_data() is None:
    st.info("Training needs the MNIST dataset, and this server does not have it. " + how_to_point()
            + " Everything else in the dashboard works without it.", icon=":material/dataset:")
    show_session_models()
    st.stop()

running = session.jobs()
job = running[-1] if running else None
name, overrides, subset = settings_form()
problem = None
try:
    jobs.check_request(name, overrides, subset)
except jobs.LimitError as e:
    problem = str(e)
if problem:
    st.warning(problem, icon=":material/speed:")
limits = jobs.limits()
st.caption(f"Limits on this shared server: {limits['max_images']:,} images and {limits['max_epochs']} epochs per "
           f"training, {limits['max_jobs']} model{'s' if limits['max_jobs'] != 1 else ''} training at a time across all "
           f"visitors and one per visitor. Each trains in its own low-priority process, so the other pages stay "
           f"quick, and stops {limits['orphan_grace']:.0f} s after its tab is closed.")
if misconfigured:
    st.warning("This server's training limits are misconfigured; the defaults apply where a value is wrong: "
               + " ".join(misconfigured), icon=":material/settings:")

if st.button("Train", type="primary", icon=":material/play_arrow:", key="train",
             disabled=job is not None or problem is not None,
             help="One model at a time per visitor." if job is not None else None):
    try:
        # The worker loads MNIST from where the server found it (MNIST_DIR, the committed copy, Keras's cache).
        session.add_job(jobs.TrainingJob.start(name, overrides, subset, owner=server_guard.visitor(),
                                               alive=server_guard.watching()))
        st.rerun()
    except jobs.LimitError as e:
        st.error(str(e), icon=":material/hourglass_top:")

if job is not None:
    history = job.history
    st.fragment(watch, run_every=POLL_SECONDS)(job, len(history))
    show_curves(history, "this run", session.next_color(), committed_accuracy(job.model_name), "live")
else:
    problem = session.last_problem()
    if problem:
        st.error(f"No model this time: {problem}", icon=":material/error:")
show_session_models()
