"""World size and rank have one home (gato.training.distributed): read from the launcher, shared out round robin."""

from types import SimpleNamespace

import pytest
from gato.training.distributed import is_main_rank, launched_processes, launched_rank, process_share


def test_without_a_launcher_there_is_one_process_and_it_is_the_main_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert (launched_processes(), launched_rank(), is_main_rank()) == (1, 0, True)


def test_the_launchers_world_size_and_rank_are_read(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    assert (launched_processes(), launched_rank(), is_main_rank()) == (3, 2, False)


@pytest.mark.parametrize("processes", [1, 2, 3, 5])
def test_the_shares_of_all_processes_hold_every_item_once_and_differ_by_at_most_one(processes):
    items = [f"task{i}" for i in range(7)]
    shares = [
        process_share(items, SimpleNamespace(process_index=i, num_processes=processes)) for i in range(processes)
    ]
    assert sorted(item for share in shares for item in share) == sorted(items)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert shares[0][0] == items[0] and (processes == 1 or shares[1][0] == items[1])  # round robin from the index
