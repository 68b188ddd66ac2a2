"""ActBERT's pretraining loss: masked-LM + masked-region KL + masked-action + matching.

Every mean is over the labelled positions only. Paddle 3.x's
``CrossEntropyLoss(ignore_index=-1, reduction="mean")`` divides by *all* positions (ignored
ones included), so the terms select the labelled rows first and average those. A term whose
labels are all ignored is 0, never NaN.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..registry import LOSSES

IGNORE = -1


def classification_term(scores, labels):
    """Mean cross-entropy over the rows whose label is not -1; 0 when there are none.

    scores [N, C], labels int64 [N] -> 0-d tensor.
    """
    keep = paddle.nonzero(labels != IGNORE).flatten()
    # float32 even under AMP: the softmax over 30522 words needs the range
    scores, labels = paddle.gather(scores, keep).astype("float32"), paddle.gather(labels, keep)
    per_row = F.cross_entropy(scores, labels.unsqueeze(-1), reduction="none")
    return per_row.sum() / max(int(keep.shape[0]), 1)


def region_term(scores, target):
    """Mean over rows of KL(target || softmax(scores)) summed over classes; 0 without rows.

    scores [N, C] (region head at masked regions), target [N, C] class distributions.
    A zero target probability contributes 0 (the limit of p log p).
    """
    log_probs = F.log_softmax(scores.astype("float32"), axis=-1)
    target = target.astype("float32")
    safe_target = paddle.where(target > 0, target, paddle.ones_like(target))
    kl = paddle.where(target > 0, target * (paddle.log(safe_target) - log_probs), paddle.zeros_like(target))
    return kl.sum() / max(float(target.shape[0]), 1e-6)


@LOSSES.register()
class ActBertLoss(nn.Layer):
    """Total loss and its four parts, each a 0-d tensor.

    ``forward`` takes the backbone's full outputs; ``from_scores`` takes the head outputs at
    labelled positions (``BertForMultiModalPreTraining.pretrain_scores``). Both give the same
    numbers: ``forward`` selects the labelled rows and calls the same terms.
    """

    def __init__(self, vocab_size=30522, a_target_size=700):
        # PaddleVideo's keyword arguments, accepted so its configs load; the sizes come from the
        # scores themselves.
        super().__init__()
        self.vocab_size = vocab_size
        self.a_target_size = a_target_size

    def forward(
        self, prediction_scores_t, prediction_scores_v, prediction_scores_a, seq_relationship_score,
        text_labels, image_label, image_target, action_label, next_sentence_label,
    ):
        """Full outputs: scores_t [B, T, vocab], scores_v [B, V, v_target], scores_a [B, A, a_target],
        seq_relationship [B, 2]; labels text [B, T], image_label [B, V-1], image_target
        [B, V-1, v_target], action [B, A], next_sentence [B] -> dict of 0-d tensors."""
        rows = lambda x: x.reshape([-1, x.shape[-1]])  # [B, L, C] -> [B * L, C]
        region_scores = rows(prediction_scores_v[:, 1:])
        masked = paddle.nonzero(image_label.flatten() == 1).flatten()
        return self._combine(
            text=classification_term(rows(prediction_scores_t), text_labels.flatten()),
            region=region_term(
                paddle.gather(region_scores, masked),
                paddle.gather(rows(image_target), masked),
            ),
            action=classification_term(rows(prediction_scores_a), action_label.flatten()),
            match=classification_term(seq_relationship_score, next_sentence_label.flatten()),
        )

    def from_scores(self, scores, image_target, next_sentence_label):
        """``scores``: PretrainScores (labelled rows only); image_target [B, V-1, v_target]."""
        target = image_target.reshape([-1, image_target.shape[-1]])
        return self._combine(
            text=classification_term(scores.text_scores, scores.text_labels),
            region=region_term(scores.region_scores, paddle.gather(target, scores.region_index)),
            action=classification_term(scores.action_scores, scores.action_labels),
            match=classification_term(scores.seq_relationship_score, next_sentence_label.flatten()),
        )

    @staticmethod
    def _combine(text, region, action, match):
        return {
            "loss": text + region + action + match,
            "loss_text": text,
            "loss_region": region,
            "loss_action": action,
            "loss_match": match,
        }
