#!/usr/bin/env python3
"""The srpnet network in PyTorch, to time one training step and one inference episode beside
`srpnet bench` on the same machine (the book's performance chapter).

It mirrors the Rust code module by module (paths relative to the repository root):

- src/model/backbone.rs  ResNet v1 (stride 2 on the first 1x1 conv of a stage), bottleneck blocks,
                         no conv biases, batch norm (eps 1e-5, momentum 0.1), output stride 8 by
                         dilating layer3 and layer4 torchvision-style (the first block of a dilated
                         stage keeps the previous dilation).
- src/model/pyramid.rs   layers 2, 3, 4 -> bilinear resize to the finest (align_corners=False; at
                         output stride 8 all three are the same size, so none happens) -> concat ->
                         1x1 conv with bias -> ReLU.
- src/model/prototype.rs masked average pooling at feature resolution under U^T m ("transposed":
                         the adjoint of bilinear upsampling applied to the mask, as two small
                         matrix products), the Rust default; `--pooling upsampled` instead
                         upsamples the features to the image size and pools there (PANet's recipe;
                         the same numbers, more work). 255 pixels count for neither region.
- src/model/fidelity.rs  fidelity = squared cosine (eps 1e-12 inside the norms, clamped to [-1, 1]
                         before squaring), logits = 20 * similarity.
- src/model/srp.rs,      support recovery (the prototypes segment their own support features,
  src/model/loss.rs      upsampled to the image size) and cross-entropy with ignore label 255;
                         total = L_que + 1 * L_sup (PAR off: the SRPNet preset).
- src/model/srpnet.rs    support and query go through the backbone as one batch of K + 1 images.
- src/model/iqi.rs       inference runs iterative query inference with T = 3, alpha = 0.5 and
                         support-IoU weighting (the preset), reading each IoU back to the host as
                         the Rust code does.
- src/bench.rs           the synthetic episode (images sin(i * 0.013) * 50 over the flat buffer,
                         centred square masks), the training step (forward + backward, no
                         optimizer step, the loss read back), the inference episode (eval mode,
                         no autograd, the probabilities read back), median of `--runs` runs after
                         `--warmup` warm-up runs, and the process's peak RSS per case.

Cases (the presets of `srpnet bench --profile ...`):
  paper     ResNet-50 blocks [3, 4, 6, 3], base width 64, pyramid 512 channels, 417x417
  embedded  blocks [1, 1, 1, 1], base width 16, pyramid 128 channels, 97x97

Run:  python pytorch_step.py --threads 2 --profile both --runs 3
Needs only `pip install torch` (CPU or CUDA wheel). Not run by CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

EXPANSION = 4
EPS = 1e-12  # src/model/fidelity.rs: EPS
IGNORE = 255


# ------------------------------------------------------------------------------------------------
# Backbone (src/model/backbone.rs)
# ------------------------------------------------------------------------------------------------


def conv(in_ch: int, out_ch: int, kernel: int, stride: int, dilation: int) -> nn.Conv2d:
    pad = dilation * (kernel - 1) // 2
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=pad, dilation=dilation, bias=False)


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class Bottleneck(nn.Module):
    """conv1x1 (stride, v1) -> conv3x3 (dilation) -> conv1x1 (x4), each with BN; projection
    shortcut where the shape changes."""

    def __init__(self, in_ch: int, width: int, stride: int, dilation: int):
        super().__init__()
        out_ch = width * EXPANSION
        self.conv1 = conv(in_ch, width, 1, stride, 1)
        self.bn1 = bn(width)
        self.conv2 = conv(width, width, 3, 1, dilation)
        self.bn2 = bn(width)
        self.conv3 = conv(width, out_ch, 1, 1, 1)
        self.bn3 = bn(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(conv(in_ch, out_ch, 1, stride, 1), bn(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


class Backbone(nn.Module):
    def __init__(self, blocks: list[int], base_width: int, output_stride: int = 8):
        super().__init__()
        self.conv1 = conv(3, base_width, 7, 2, 1)
        self.bn1 = bn(base_width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        dilate = {8: [False, False, True, True], 16: [False, False, False, True]}.get(
            output_stride, [False] * 4
        )
        in_ch, dilation = base_width, 1
        layers = []
        for stage in range(4):
            width = base_width << stage
            stride = 1 if stage == 0 else 2
            previous_dilation = dilation
            if dilate[stage]:
                dilation *= stride
                stride = 1
            stage_blocks = []
            for b in range(blocks[stage]):
                s, d = (stride, previous_dilation) if b == 0 else (1, dilation)
                stage_blocks.append(Bottleneck(in_ch, width, s, d))
                in_ch = width * EXPANSION
            layers.append(nn.Sequential(*stage_blocks))
        self.layers = nn.ModuleList(layers)

    def forward(self, images: torch.Tensor, levels: list[int]) -> list[torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(images))))
        outputs = []
        for level, layer in enumerate(self.layers[: max(levels)], start=1):
            x = layer(x)
            if level in levels:
                outputs.append(x)
        return outputs


# ------------------------------------------------------------------------------------------------
# Pyramid, prototypes, fidelity, losses
# ------------------------------------------------------------------------------------------------


def bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Pyramid(nn.Module):
    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, channels, 1, bias=True)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        h, w = levels[0].shape[-2:]
        resized = [f if f.shape[-2:] == (h, w) else bilinear(f, (h, w)) for f in levels]
        return F.relu(self.reduce(torch.cat(resized, 1)))


def interpolation_matrix(inp: int, out: int, device) -> torch.Tensor:
    """[out, inp] matrix of 1-D bilinear resizing with half-pixel centres (align_corners=False)."""
    a = torch.zeros(out, inp, dtype=torch.float32)
    scale = inp / out
    for o in range(out):
        src = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(src), inp - 1)
        i1 = min(i0 + 1, inp - 1)
        frac = src - i0
        a[o, i0] += 1.0 - frac
        a[o, i1] += frac
    return a.to(device)


def transposed_bilinear(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """U^T m for [N, R, H, W] maps -> [N, R, h, w] (U: bilinear upsampling [h, w] -> [H, W])."""
    big_h, big_w = maps.shape[-2:]
    a_h_t = interpolation_matrix(size[0], big_h, maps.device).t()  # [h, H]
    a_w = interpolation_matrix(size[1], big_w, maps.device)  # [W, w]
    return a_h_t @ maps @ a_w


def weighted_sums(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[N, C, h, w] x [N, R, h, w] -> [N, R, C]."""
    n, c = features.shape[:2]
    r = weights.shape[1]
    return weights.reshape(n, r, -1) @ features.reshape(n, c, -1).transpose(1, 2)


def masked_average_pool(features: torch.Tensor, masks: torch.Tensor, pooling: str) -> torch.Tensor:
    """MAP prototypes [2, C] (row 0 background, row 1 foreground) from K shots."""
    k, _, h, w = features.shape
    regions = torch.stack([(masks == 0).float(), (masks == 1).float()], 1)  # [K, 2, H, W]
    areas = regions.sum((2, 3)).tolist()  # read back to the host, as the Rust code does
    if pooling == "transposed":
        sums = weighted_sums(features, transposed_bilinear(regions, (h, w)))
    else:
        sums = weighted_sums(bilinear(features, tuple(masks.shape[-2:])), regions)
    coefficients = [[0.0, 0.0] for _ in range(k)]
    for region in range(2):
        shots = sum(1 for s in range(k) if areas[s][region] > 0)
        if shots == 0:
            raise ValueError("a support region is empty in every shot")
        for s in range(k):
            if areas[s][region] > 0:
                coefficients[s][region] = 1.0 / (areas[s][region] * shots)
    coefficients = torch.tensor(coefficients, device=features.device).unsqueeze(2)  # [K, 2, 1]
    return (sums * coefficients).sum(0)


def normalize(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x / (x.pow(2).sum(dim, keepdim=True) + EPS).sqrt()


def fidelity_logits(features: torch.Tensor, prototypes: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """scale * cos^2: [N, C, h, w] x [P, C] -> [N, P, h, w]."""
    n, c, h, w = features.shape
    unit_f = normalize(features, 1).reshape(n, c, h * w)
    unit_p = normalize(prototypes, 1).unsqueeze(0).expand(n, -1, -1)
    cosine = (unit_p @ unit_f).reshape(n, -1, h, w).clamp(-1.0, 1.0)
    return cosine.pow(2) * scale


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over the pixels that are not 255 (labels 0/1/255 as float, like the Rust code)."""
    return F.cross_entropy(logits, labels.long(), ignore_index=IGNORE)


def foreground_iou(scores: torch.Tensor, labels: torch.Tensor) -> float:
    valid = labels != IGNORE
    truth = labels == 1
    predicted = (scores.argmax(1) == 1) & valid
    inter_union = torch.stack([(predicted & truth).sum(), (predicted | truth).sum()]).tolist()
    return 1.0 if inter_union[1] == 0 else inter_union[0] / inter_union[1]


# ------------------------------------------------------------------------------------------------
# The network (src/model/srpnet.rs)
# ------------------------------------------------------------------------------------------------


class SrpNet(nn.Module):
    def __init__(self, blocks, base_width, channels, levels=(2, 3, 4), pooling="transposed"):
        super().__init__()
        self.levels = list(levels)
        self.pooling = pooling
        self.backbone = Backbone(blocks, base_width)
        in_channels = sum(base_width * (1 << (l - 1)) * EXPANSION for l in self.levels)
        self.pyramid = Pyramid(in_channels, channels)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.pyramid(self.backbone(images, self.levels))

    def forward(self, support_images, support_masks, query_image, query_mask=None, train=True,
                iterations=3, alpha=0.5):
        k = support_images.shape[0]
        size = tuple(support_images.shape[-2:])
        features = self.features(torch.cat([support_images, query_image], 0))
        support_features, query_features = features[:k], features[k : k + 1]
        prototypes = masked_average_pool(support_features, support_masks, self.pooling)
        query_low_res = fidelity_logits(query_features, prototypes)
        query_logits = bilinear(query_low_res, size)
        support_logits = bilinear(fidelity_logits(support_features, prototypes), size)
        if train:
            probabilities = query_logits.softmax(1)
            loss = cross_entropy(query_logits, query_mask) + 1.0 * cross_entropy(support_logits, support_masks)
            return probabilities, loss
        return iterative_query_inference(
            query_features, support_features, support_masks, prototypes, size, iterations, alpha
        ), None


def iterative_query_inference(query_features, support_features, support_masks, initial, size,
                              iterations, alpha):
    """src/model/iqi.rs with support-IoU weighting."""
    unit_initial = normalize(initial, 1)
    prototypes = initial
    predictions, scores = [], []
    for t in range(iterations + 1):
        low_res = fidelity_logits(query_features, prototypes)
        predictions.append(bilinear(low_res, size).softmax(1))
        recovered = bilinear(fidelity_logits(support_features, prototypes), size)
        scores.append(foreground_iou(recovered, support_masks))
        if t == iterations:
            break
        weights = low_res.softmax(1)
        area = weights.sum((2, 3)) + 1e-5  # [1, 2]
        query_prototypes = weighted_sums(query_features, weights).squeeze(0) / area.reshape(2, 1)
        blend = unit_initial * alpha + normalize(query_prototypes, 1) * (1.0 - alpha)
        prototypes = normalize(blend, 1)
    total = sum(scores)
    weights = [s / total for s in scores] if total > 0 else [1.0 / len(scores)] * len(scores)
    return sum(p * w for p, w in zip(predictions, weights))


# ------------------------------------------------------------------------------------------------
# The benchmark (src/bench.rs)
# ------------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    blocks: list[int]
    base_width: int
    channels: int
    size: int


CASES = {
    "paper": Case("pytorch-resnet50", [3, 4, 6, 3], 64, 512, 417),
    "embedded": Case("pytorch-embedded", [1, 1, 1, 1], 16, 128, 97),
}


def synthetic_episode(shots: int, size: int, device):
    n = shots + 1
    flat = (torch.arange(n * 3 * size * size, dtype=torch.float32) * 0.013).sin() * 50.0
    images = flat.reshape(n, 3, size, size)
    y = torch.arange(size).reshape(size, 1)
    x = torch.arange(size).reshape(1, size)
    lo, hi = size // 4, 3 * size // 4
    square = ((y >= lo) & (y < hi) & (x >= lo) & (x < hi)).float()
    masks = square.expand(n, size, size).contiguous()
    return (images[:shots].to(device), masks[:shots].to(device),
            images[shots:].to(device), masks[shots:].to(device))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, warmup: int, runs: int, device) -> float:
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        fn()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]  # the Rust code's median: the upper middle for even counts


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def run_case(case: Case, args, device):
    torch.manual_seed(0)
    model = SrpNet(case.blocks, case.base_width, case.channels, pooling=args.pooling).to(device)
    # Burn's `num_params` counts batch-norm running mean and variance too; count them the same way
    # so that the column matches `srpnet bench` (and shows that the two networks have one shape).
    trainable = sum(p.numel() for p in model.parameters())
    running = sum(m.running_mean.numel() + m.running_var.numel()
                  for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    params = trainable + running
    s_img, s_mask, q_img, q_mask = synthetic_episode(args.shots, case.size, device)
    reset_peak_rss()

    def train_step():
        model.train()
        model.zero_grad(set_to_none=True)
        _, loss = model(s_img, s_mask, q_img, q_mask, train=True)
        loss.backward()
        value = loss.item()
        if not torch.isfinite(torch.tensor(value)):
            raise RuntimeError(f"the loss became {value}")

    def inference():
        model.eval()
        with torch.no_grad():
            probabilities, _ = model(s_img, s_mask, q_img, train=False)
            probabilities.cpu()

    train_s = timed(train_step, args.warmup, args.runs, device)
    infer_s = timed(inference, args.warmup, args.runs, device)
    return params, trainable, train_s, infer_s, peak_rss_mib()


# The shapes of `srpnet bench --breakdown` (src/bench.rs, resnet50_conv_shapes), in its order:
# (name, [batch, channels in, height, width], channels out, kernel, stride, dilation).
CONV_SHAPES = [
    ("stem 7x7/2, 3->64", [2, 3, 417, 417], 64, 7, 2, 1),
    ("layer1 1x1, 64->256", [2, 64, 105, 105], 256, 1, 1, 1),
    ("layer1 3x3, 64->64", [2, 64, 105, 105], 64, 3, 1, 1),
    ("layer2 1x1/2, 256->128", [2, 256, 105, 105], 128, 1, 2, 1),
    ("layer3 1x1, 1024->256", [2, 1024, 53, 53], 256, 1, 1, 1),
    ("layer3 3x3 dil 2, 256->256", [2, 256, 53, 53], 256, 3, 1, 2),
    ("layer4 3x3 dil 4, 512->512", [2, 512, 53, 53], 512, 3, 1, 4),
]


def run_conv_shapes(args, device):
    """Each convolution's forward pass and its two gradients (aten's convolution_backward with
    one output at a time), as `srpnet bench --breakdown` times them."""
    print(f"\nResNet-50 convolutions at 417 px, batch 2 (median s, GFLOP/s in brackets):")
    print(f"{'shape':<28} {'GFLOP':>7} {'forward':>16} {'input grad':>16} {'weight grad':>16}")
    for name, (n, c, h, w), out_ch, k, s, d in CONV_SHAPES:
        p = d * (k - 1) // 2
        x = torch.sin(torch.arange(n * c * h * w, dtype=torch.float32) * 0.013).reshape(n, c, h, w).to(device)
        weight = torch.sin(torch.arange(out_ch * c * k * k, dtype=torch.float32) * 0.013 + 1).reshape(
            out_ch, c, k, k).to(device)
        o = (h + 2 * p - d * (k - 1) - 1) // s + 1
        grad = torch.sin(torch.arange(n * out_ch * o * o, dtype=torch.float32) * 0.013 + 2).reshape(
            n, out_ch, o, o).to(device)
        gflop = 2.0 * n * c * out_ch * k * k * o * o / 1e9

        def backward(mask):
            return lambda: torch.ops.aten.convolution_backward(
                grad, x, weight, None, [s, s], [p, p], [d, d], False, [0, 0], 1, mask)

        with torch.no_grad():
            times = [
                timed(lambda: torch.nn.functional.conv2d(x, weight, None, s, p, d), args.warmup, args.runs, device),
                timed(backward([True, False, False]), args.warmup, args.runs, device),
                timed(backward([False, True, False]), args.warmup, args.runs, device),
            ]
        cells = [f"{t:.3f} ({gflop / t:.0f})" for t in times]
        print(f"{name:<28} {gflop:>7.2f} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--profile", choices=["paper", "embedded", "both"], default="both")
    p.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--pooling", choices=["transposed", "upsampled"], default="transposed",
                   help="MAP at feature resolution under U^T m (the Rust default) or on upsampled features")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--convs", action="store_true",
                   help="also time each ResNet-50 convolution shape (as `srpnet bench --breakdown`)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this torch build or machine has no CUDA device")
    profiles = ["paper", "embedded"] if args.profile == "both" else [args.profile]

    print(
        f"pytorch reference: torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"{args.shots}-shot, warm-up {args.warmup}, median of {args.runs} run(s), pooling {args.pooling}, "
        f"python {sys.version.split()[0]}, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
    print(f"{'case':<24} {'size':>6} {'params':>12} {'train s':>12} {'infer s':>12} {'peak RSS MiB':>14}")
    notes = []
    for name in profiles:
        case = CASES[name]
        params, trainable, train_s, infer_s, rss = run_case(case, args, device)
        rss_text = "n/a" if rss is None else f"{rss:.0f}"
        print(f"{case.name:<24} {case.size:>6} {params:>12} {train_s:>12.3f} {infer_s:>12.3f} {rss_text:>14}",
              flush=True)
        notes.append(f"{case.name}: {trainable} trainable parameters + {params - trainable} batch-norm running statistics")
    print("params counts batch-norm running mean/var as Burn's num_params does; " + "; ".join(notes))
    if args.convs:
        run_conv_shapes(args, device)


if __name__ == "__main__":
    main()
