"""Training-step time of the CIFAR-10 image models on this CPU, channels-first vs channels-last.

One SGD step on a random batch of 256 images, averaged over 3 steps after 2 warm-up steps, with
torch's default thread count; prints seconds per step and the implied seconds per 50,000-image epoch.

    uv run python benchmarks/image_step_time.py
"""

from __future__ import annotations

import time

import torch

import teacher

CASES = [("unlearning_cnn", {}), ("resnet9_narrow", {}), ("am_h1", {})]


def step_seconds(name: str, channels_last: bool, batch: int = 256) -> float:
    model = teacher.create_model(name, in_channels=3, image_size=32)
    inputs, labels = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for index in range(5):
        if index == 2:
            started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / 3


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, _ in CASES:
        for channels_last in (False, True):
            seconds = step_seconds(name, channels_last)
            layout = "channels-last " if channels_last else "channels-first"
            print(f"{name:16s} {layout}: {seconds:.3f} s/step of 256 -> {seconds * 50000 / 256:.0f} s per 50k epoch")


if __name__ == "__main__":
    main()
