"""A tiny training loop in pure Python: fits y = 3x + 2 with SGD and prints the loss per epoch,
then where it ran. The demo runs it with `envrun IMAGE -- python examples/demo/train.py`."""

import os
import random
import sys


def main() -> int:
    rng = random.Random(42)
    data = [(x, 3.0 * x + 2.0 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(256))]
    w, b, lr = 0.0, 0.0, 0.1
    for epoch in range(1, 9):
        rng.shuffle(data)
        loss = 0.0
        for x, y in data:
            err = (w * x + b) - y
            loss += err * err
            w -= lr * 2 * err * x
            b -= lr * 2 * err
        print(f"epoch {epoch}: loss {loss / len(data):.4f}  w={w:.3f} b={b:.3f}")
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    print(f"CONDA_PREFIX={os.environ.get('CONDA_PREFIX', '(unset)')}")
    print(f"CONDA_DEFAULT_ENV={os.environ.get('CONDA_DEFAULT_ENV', '(unset)')}")
    print(f"DEMO_MODE={os.environ.get('DEMO_MODE', '(unset)')}  (from environment.yml variables)")
    print(f"DEMO_TRAINER_HOME={os.environ.get('DEMO_TRAINER_HOME', '(unset)')}  (from activate.d)")
    try:
        import demo_trainer

        print(f"demo_trainer {demo_trainer.__version__} from {os.path.dirname(demo_trainer.__file__)}")
    except ImportError as e:  # pragma: no cover - shown to the user
        print(f"demo_trainer not importable: {e}")
    try:
        import demo_metrics

        r2 = demo_metrics.r2([(w * x + b, y) for x, y in data])
        print(f"r2 {r2:.4f}  (demo_metrics {demo_metrics.__version__}, a wheel from the pip: section,"
              f" from {os.path.dirname(demo_metrics.__file__)})")
    except ImportError as e:  # pragma: no cover - shown to the user
        print(f"demo_metrics not importable: {e}")
    return 0 if abs(w - 3.0) < 0.1 and abs(b - 2.0) < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
