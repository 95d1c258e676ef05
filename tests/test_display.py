"""labhelpers.display: the labs' multi-panel curves, the masked-token view and excerpts of library code."""

from __future__ import annotations

import inspect
import re

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from labhelpers import display  # noqa: E402


def test_plot_panels_draws_one_panel_per_title_with_its_columns():
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({"step": [1, 2, 3], "reward": [0.1, 0.4, 0.6], "objective": [0.1, 0.3, 0.2],
                          "kl": [0.0, 1.0, 2.5]})
    fig = display.plot_panels(frame, {"score and objective": ["reward", "objective"], "KL": "kl"}, show=False)
    left, right = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["score and objective", "KL"]
    assert len(left.get_lines()) == 2 and len(right.get_lines()) == 1
    assert list(right.get_lines()[0].get_ydata()) == [0.0, 1.0, 2.5]
    assert left.get_legend() is not None and right.get_legend() is None
    plt.close(fig)
    with pytest.raises(ValueError, match="no column 'entropy'.*it has \\['step', 'reward'"):
        display.plot_panels(frame, {"entropy": "entropy"}, show=False)


class PieceTokenizer:
    def decode(self, ids):
        return {0: "<pad>", 1: "Q", 2: ":", 3: " a", 4: "\n"}[ids[0]]


def test_token_masks_mark_exactly_the_trained_tokens_by_background():
    batch = {"input_ids": torch.tensor([[1, 2, 3, 4], [0, 1, 2, 3]]),
             "attention_mask": torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]]),
             "labels": torch.tensor([[-100, -100, 3, 4], [-100, -100, -100, 3]])}
    view = display.show_token_masks(batch, PieceTokenizer(), show=False)
    rows = view["text/html"].split("<hr>")
    assert len(rows) == 2
    for row, labels in zip(rows, batch["labels"].tolist()):
        spans = re.findall(r'<span style="([^"]*)">', row)
        assert len(spans) == 4
        assert sum("background" in s for s in spans) == sum(label != -100 for label in labels)
    assert "\\n" in rows[0], "a newline token is shown, not swallowed"
    assert view["text/plain"].split("\n") == ["  2 trained: Q : [ a] [\\n]", "  1 trained: · Q : [ a]"]
    with pytest.raises(ValueError, match="no 'labels'"):
        display.show_token_masks({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
                                 PieceTokenizer(), show=False)


def test_source_excerpt_shows_the_named_lines_with_their_numbers():
    from labhelpers.losses import dpo_loss

    text = display.source_excerpt(dpo_loss, "chosen_logratios =", "return losses")
    header, *body = text.rstrip("\n").split("\n")
    assert header.startswith("# from labhelpers.losses.dpo_loss")
    lines, start = inspect.getsourcelines(dpo_loss)
    first = next(i for i, line in enumerate(lines) if "chosen_logratios =" in line)
    assert body[0] == f"{start + first:5d}  {lines[first].rstrip()}"
    assert "return losses" in body[-1] and len(body) < len(lines)
    assert len(display.source_excerpt(dpo_loss, "chosen_logratios =", max_lines=2).split("\n")) == 1 + 2 + 1
    with pytest.raises(ValueError, match="no line of dpo_loss contains 'nonsense'"):
        display.source_excerpt(dpo_loss, "nonsense")


def test_plot_log_history_pairs_train_and_held_out_and_draws_guides():
    import matplotlib.pyplot as plt

    log = [{"step": 0, "eval_loss": 0.69}, {"step": 5, "loss": 0.6}, {"step": 10, "loss": 0.5, "rewards/chosen": 0.1},
           {"step": 10, "eval_loss": 0.55, "rewards/rejected": -0.2}]
    assert display.log_series(log, "loss") == ([5, 10], [0.6, 0.5])
    fig = display.plot_log_history(log, {"loss": ["loss", "eval_loss"], "rewards": ["rewards/chosen", "rewards/rejected"]},
                                   guides={"loss": 0.693}, show=False)
    loss_ax, reward_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "held-out"]
    assert [t.get_text() for t in reward_ax.get_legend().get_texts()] == ["chosen", "rejected"]
    assert list(loss_ax.get_lines()[1].get_ydata()) == [0.69, 0.55]
    assert list(loss_ax.get_lines()[2].get_ydata()) == [0.693, 0.693], "the guide is the third line"
    assert len(reward_ax.get_lines()) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="'eval_rewards/margins' was never logged"):
        display.plot_log_history(log, {"m": ["eval_rewards/margins"]}, show=False)
    with pytest.raises(ValueError, match="guide names the panel 'KL'"):
        display.plot_log_history(log, {"loss": ["loss"]}, guides={"KL": 0.0}, show=False)


def test_a_shown_figure_is_not_returned_so_a_notebook_draws_it_once(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda: None)
    frame = pd.DataFrame({"step": [1, 2], "kl": [0.0, 1.0]})
    assert display.plot_panels(frame, {"KL": "kl"}) is None
    assert display.plot_log_history([{"step": 1, "loss": 0.7}], {"loss": ["loss"]}) is None
    plt.close("all")
