"""What the labs show but do not teach: multi-panel curves, the masked-token view, excerpts of library code.

Each helper draws or prints one thing and returns it, so a lab's cell stays one line long where the picture is
not the lesson.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Mapping, Sequence


def plot_panels(frame, panels: Mapping[str, str | Sequence[str]], x: str = "step", panel_width: float = 4.3,
                panel_height: float = 3.0, show: bool = True):
    """One row of line plots of a DataFrame's columns against ``x``, shown (or, with ``show=False``, returned).

    ``panels`` maps each panel's title to a column, or to several columns that share the panel and its y axis
    (each gets a legend entry).
    """
    import matplotlib.pyplot as plt

    wanted = [x] + [c for cols in panels.values() for c in ([cols] if isinstance(cols, str) else cols)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"plot_panels: no column {missing[0]!r} in the table; it has {list(frame.columns)}. "
                         "Name one of those, or add the column first.")
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_width * len(panels), panel_height), squeeze=False)
    for ax, (title, cols) in zip(axes[0], panels.items()):
        cols = [cols] if isinstance(cols, str) else list(cols)
        frame.plot(x=x, y=cols, ax=ax, title=title, legend=len(cols) > 1)
    fig.tight_layout()
    if show:
        plt.show()  # shown once: returning the figure too would make a notebook draw it a second time
        return None
    return fig


def log_series(log_history: Sequence[Mapping], key: str) -> tuple[list, list]:
    """``(steps, values)`` of one key of a transformers Trainer's ``state.log_history``."""
    rows = [(entry["step"], entry[key]) for entry in log_history if key in entry]
    return [step for step, _ in rows], [value for _, value in rows]


def plot_log_history(log_history: Sequence[Mapping], panels: Mapping[str, Sequence[str]],
                     guides: Mapping[str, float] | None = None, panel_width: float = 3.8, panel_height: float = 3.0,
                     show: bool = True):
    """One row of panels from a Trainer's ``state.log_history``, shown (or, with ``show=False``, returned).

    ``panels`` maps a title to the logged keys it plots. A key and its ``eval_`` twin in one panel are labelled
    "train" and "held-out" (the held-out points marked, as they are sparse). ``guides`` draws a dotted
    horizontal line at a value in the panel of that title (log 2 for a loss that starts there, 0 for rewards).
    """
    import matplotlib.pyplot as plt

    logged = {key for entry in log_history for key in entry}
    missing = [k for keys in panels.values() for k in keys if k not in logged]
    if missing:
        raise ValueError(f"plot_log_history: {missing[0]!r} was never logged; the log has {sorted(logged)}.")
    unknown = [title for title in (guides or {}) if title not in panels]
    if unknown:
        raise ValueError(f"plot_log_history: a guide names the panel {unknown[0]!r}, but the panels are "
                         f"{list(panels)}.")
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_width * len(panels), panel_height), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels.items()):
        for key in keys:
            if key.startswith("eval_"):
                ax.plot(*log_series(log_history, key), "o-", label="held-out")
            else:
                label = "train" if f"eval_{key}" in keys else key.split("/")[-1]
                ax.plot(*log_series(log_history, key), label=label)
        if guides and title in guides:
            ax.axhline(guides[title], color="grey", ls=":")
        ax.set(title=title, xlabel="step")
        ax.legend()
    fig.tight_layout()
    if show:
        plt.show()  # shown once: returning the figure too would make a notebook draw it a second time
        return None
    return fig


_MASK_STYLES = {"train": "background:#c8f7c5;font-weight:bold", "masked": "color:#777", "pad": "color:#ccc"}


def show_token_masks(batch, tokenizer, show: bool = True) -> dict:
    """Each row of a collated batch token by token: trained tokens (label not -100) bold on green, masked tokens
    grey, padding faint. Displays (and returns) an HTML view with a plain-text twin for saved notebooks and
    terminals, where trained tokens are [bracketed] and padding is a dot.

    ``batch``: ``input_ids``, ``attention_mask`` and ``labels``, each ``(B, T)``.
    """
    missing = [k for k in ("input_ids", "attention_mask", "labels") if k not in batch]
    if missing:
        raise ValueError(f"show_token_masks: the batch has no {missing[0]!r}; pass what the collator returns "
                         "(input_ids, attention_mask and labels).")
    rows_html, rows_text = [], []
    for ids, attention, labels in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(),
                                      batch["labels"].tolist()):
        spans, marks = [], []
        for token_id, seen, label in zip(ids, attention, labels):
            piece = repr(tokenizer.decode([token_id]))[1:-1]  # repr shows newlines and spaces
            kind = "pad" if not seen else ("train" if label != -100 else "masked")
            spans.append(f'<span style="{_MASK_STYLES[kind]};border:1px solid #ddd;margin:1px">'
                         f"{html.escape(piece)}</span>")
            marks.append({"train": f"[{piece}]", "masked": piece, "pad": "·"}[kind])
        trained = sum(label != -100 for label in labels)
        rows_html.append(f"<div style='font-family:monospace;line-height:1.9'>{trained} trained of "
                         f"{sum(attention)} tokens: " + "".join(spans) + "</div>")
        rows_text.append(f"{trained:>3} trained: " + " ".join(marks))
    view = {"text/html": "<hr>".join(rows_html), "text/plain": "\n".join(rows_text)}
    if show:
        from IPython.display import display

        display(view, raw=True)
    return view


def source_excerpt(function, first: str, last: str | None = None, max_lines: int = 12) -> str:
    """The lines of ``function``'s source from the first one containing ``first`` to the one containing ``last``
    (or ``max_lines`` lines), with their line numbers in the file: the part that matters, not the whole body."""
    lines, start = inspect.getsourcelines(function)
    name = getattr(function, "__qualname__", repr(function))
    begin = next((i for i, line in enumerate(lines) if first in line), None)
    if begin is None:
        raise ValueError(f"source_excerpt: no line of {name} contains {first!r}; pick a fragment of one of its lines.")
    end = begin + max_lines
    if last is not None:
        found = next((i for i, line in enumerate(lines[begin:], begin) if last in line), None)
        if found is None:
            raise ValueError(f"source_excerpt: no line of {name} after {first!r} contains {last!r}.")
        end = found + 1
    body = "".join(f"{start + i:5d}  {lines[i]}" for i in range(begin, min(end, len(lines))))
    return f"# from {function.__module__}.{name} (numbers: lines of its file)\n{body}"
