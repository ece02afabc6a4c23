"""Shared test setup: nothing may reach the Hugging Face Hub (a look-up would retry for ~25 s)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def save_tiny_checkpoint():
    """``save(path, context) -> str``: an untrained, seeded gato-tiny model + the default processor in ``path``."""

    def save(path, context: int) -> str:
        import torch

        from gato import GatoConfig, GatoForCausalLM, GatoProcessor

        config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=context)
        torch.manual_seed(0)
        GatoForCausalLM(config).save_pretrained(path)
        GatoProcessor.from_defaults(discrete_layout=config.discrete_layout, max_length=context).save_pretrained(path)
        return str(path)

    return save


@pytest.fixture
def one_torch_thread():
    """Tiny matmuls on a shared 2-core machine: one torch thread avoids OpenMP spin-wait contention
    (measured ~50x faster for the agent tests, 0.1 s vs 2 s per Trainer step)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def free_port():
    """``free_port() -> int``: a TCP port nothing listens on now, for an `accelerate launch`'s main process."""
    import socket

    def find() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    return find
