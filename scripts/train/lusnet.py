"""LusNet in PyTorch, layer for layer the network of src/model/lusnet.rs.

Training uses batch norm after every 3x3 convolution; `export_state` folds
it into the convolution weights, which is the form the Rust runtime loads.

v3 adds two small parts on the frame embedding (the [mean | max] pool of the
deepest features, 2 w3 values):

* `findings`: one logit per frame for each of FINDINGS (A-lines, B-lines,
  consolidation, abnormal pleura). A clip's finding is the log-sum-exp pool
  of its frames' logits (a soft maximum: a finding seen in a few frames is
  in the clip).
* `clip`: the clip decision (multiple-instance learning). Attention weights
  a_i = w . tanh(V e_i + b) over the frames' embeddings e_i give one pooled
  embedding; one linear unit z reads it, and three ordered cut-points turn z
  into a Soldati score (cumulative-link ordinal model: P(y > k) = sigmoid(z - t_k)).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

SEG_CLASSES = ["background", "b_line", "consolidation"]
FINDINGS = ["a_lines", "b_lines", "consolidation", "pleura_abnormal"]
FINDING_POOL_SHARPNESS = 4.0  # r of the log-sum-exp pool of frame finding logits
CLIP_ATTENTION = 32  # hidden units of the clip head's attention


def lse_pool(logits, dim, r=FINDING_POOL_SHARPNESS):
    """(1/r) log mean exp(r x) over dim: between the mean (r -> 0) and the maximum (r -> inf)."""
    n = logits.shape[dim]
    return (torch.logsumexp(r * logits, dim) - torch.log(torch.tensor(float(n)))) / r


class ClipHead(nn.Module):
    """Attention pooling of frame embeddings and an ordinal (cumulative-link) score."""

    def __init__(self, dim, hidden=CLIP_ATTENTION, dropout=0.3):
        super().__init__()
        self.attn_v = nn.Linear(dim, hidden)
        self.attn_w = nn.Linear(hidden, 1)
        self.ordinal = nn.Linear(dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        # Cut-points t_1 < t_2 < t_3, kept ordered by positive gaps.
        self.first_cut = nn.Parameter(torch.tensor(-1.0))
        self.cut_gaps = nn.Parameter(torch.tensor([0.5, 0.5]))

    def cutpoints(self):
        gaps = F.softplus(self.cut_gaps)
        return torch.cat([self.first_cut[None], self.first_cut + torch.cumsum(gaps, 0)])

    def forward(self, e, mask=None):
        """e: [B, T, D] frame embeddings (mask [B, T] of real frames) -> (z [B], attention [B, T])."""
        a = self.attn_w(torch.tanh(self.attn_v(e)))[..., 0]
        if mask is not None:
            a = a.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(a, 1)
        pooled = (alpha[..., None] * e).sum(1)
        return self.ordinal(self.dropout(pooled))[:, 0], alpha


def ordinal_probs(z, cuts):
    """P(score = k) for k = 0..3 from z [B] and cut-points [3]."""
    above = torch.sigmoid(z[:, None] - cuts[None])  # P(y > k), k = 0, 1, 2
    ones, zeros = torch.ones_like(z[:, None]), torch.zeros_like(z[:, None])
    cum = torch.cat([ones, above, zeros], 1)
    return (cum[:, :-1] - cum[:, 1:]).clamp(min=0)


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))

    def folded(self):
        """(weight, bias) with batch norm folded in (eval statistics)."""
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        weight = self.conv.weight * scale[:, None, None, None]
        bias = self.bn.bias - self.bn.running_mean * scale
        return weight.detach(), bias.detach()


class LusNet(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), seg_classes=len(SEG_CLASSES), dropout=0.3, weak_head=False,
                 v3_heads=False, in_channels=1):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.widths = widths
        # 1: one frame; 3: a 2.5D input, frames t - 2 step, t - step and t (train.py's `history_step`).
        self.stem = ConvBnRelu(in_channels, w0, 2)
        self.stem2 = ConvBnRelu(w0, w0)
        self.down1 = ConvBnRelu(w0, w1, 2)
        self.block1 = ConvBnRelu(w1, w1)
        self.down2 = ConvBnRelu(w1, w2, 2)
        self.block2 = ConvBnRelu(w2, w2)
        self.down3 = ConvBnRelu(w2, w3, 2)
        self.block3 = ConvBnRelu(w3, w3)
        self.up2 = ConvBnRelu(w3 + w2, w2)
        self.up1 = ConvBnRelu(w2 + w1, w1)
        self.seg = nn.Conv2d(w1, seg_classes, 1)
        # Training-only auxiliary head for weak masks on real frames (`--masks both`); never exported.
        self.seg_weak = nn.Conv2d(w1, seg_classes, 1) if weak_head else None
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(2 * w3, 4)
        self.findings = nn.Linear(2 * w3, len(FINDINGS)) if v3_heads else None
        self.clip = ClipHead(2 * w3) if v3_heads else None

    ENCODER = ["stem", "stem2", "down1", "block1", "down2", "block2", "down3", "block3"]

    def forward(self, x, detach_encoder=False):
        """x: [N, C, S, S] normalized -> (score logits [N, 4], seg logits [N, C, S/4, S/4])."""
        score, features, _ = self.decode(x, detach_encoder)
        return score, self.seg(features)

    def encode(self, x):
        """x -> the encoder's features at 1/4, 1/8 and 1/16 of the side, and the frame embedding
        (the [mean | max] pool of the deepest, [N, 2 w3])."""
        s4 = self.block1(self.down1(self.stem2(self.stem(x))))
        s8 = self.block2(self.down2(s4))
        s16 = self.block3(self.down3(s8))
        return s4, s8, s16, torch.cat([s16.mean((2, 3)), s16.amax((2, 3))], 1)

    def decode(self, x, detach_encoder=False):
        """x -> (score logits, decoder features [N, w1, S/4, S/4] that the segmentation heads read,
        frame embeddings [N, 2 w3]).

        With `detach_encoder`, the decoder sees the encoder's features but sends no gradient back
        into them (training the segmentation on phantom frames leaves the encoder to real frames)."""
        s4, s8, s16, pooled = self.encode(x)
        if detach_encoder:
            s4, s8, s16, pooled = s4.detach(), s8.detach(), s16.detach(), pooled.detach()
        score = self.score(self.dropout(pooled))
        d8 = self.up2(torch.cat([F.interpolate(s16, scale_factor=2, mode="nearest"), s8], 1))
        d4 = self.up1(torch.cat([F.interpolate(d8, scale_factor=2, mode="nearest"), s4], 1))
        return score, d4, pooled

    def export_state(self):
        """Tensors as `pleura model import` reads them: BN folded, float32."""
        state = {}
        for name in ["stem", "stem2", "down1", "block1", "down2", "block2", "down3", "block3", "up2", "up1"]:
            w, b = getattr(self, name).folded()
            state[f"{name}.weight"], state[f"{name}.bias"] = w, b
        state["seg.weight"], state["seg.bias"] = self.seg.weight.detach(), self.seg.bias.detach()
        state["score.weight"], state["score.bias"] = self.score.weight.detach(), self.score.bias.detach()
        if self.findings is not None:
            state["findings.weight"], state["findings.bias"] = self.findings.weight.detach(), self.findings.bias.detach()
            c = self.clip
            state["clip.attn_v.weight"], state["clip.attn_v.bias"] = c.attn_v.weight.detach(), c.attn_v.bias.detach()
            state["clip.attn_w.weight"], state["clip.attn_w.bias"] = c.attn_w.weight.detach(), c.attn_w.bias.detach()
            state["clip.ordinal.weight"] = c.ordinal.weight.detach()
            state["clip.cutpoints"] = c.cutpoints().detach()
        return {k: v.float().contiguous().cpu() for k, v in state.items()}
