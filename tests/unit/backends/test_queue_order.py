"""Queue positions under round-robin claims: the arithmetic against a simulation of the order
``FAIR_ORDER`` serves jobs in."""

from __future__ import annotations

import random

from takeone.backends.sql.queue_order import WaitingKey, round_robin_position


def _serve(keys: list[WaitingKey]) -> list[tuple[str, int]]:
    """Every queued job, (key, rank within its key), in the order round-robin claims take them."""
    state = {k.key_id: [k.last_started, k.head, k.queued, 0] for k in keys}
    order, now = [], 1000.0
    while any(v[2] for v in state.values()):
        key_id = min((k for k, v in state.items() if v[2]),
                     key=lambda k: (state[k][0] is not None, state[k][0] or 0.0, *state[k][1]))
        entry = state[key_id]
        entry[3] += 1
        order.append((key_id, entry[3]))
        now += 1
        entry[0], entry[2] = now, entry[2] - 1
        entry[1] = (entry[1][0] + 100.0, entry[1][1])  # the key's next job is newer
    return order


def test_positions_match_the_order_jobs_are_served_in() -> None:
    rng = random.Random(7)
    for _ in range(200):
        keys = [WaitingKey(f"k{i}", rng.choice([None, float(rng.randint(1, 5))]),
                           (float(rng.randint(0, 50)), f"j{i}"), rng.randint(1, 6))
                for i in range(rng.randint(1, 6))]
        order = _serve(keys)
        for place, (key_id, rank) in enumerate(order, start=1):
            mine = next(k for k in keys if k.key_id == key_id)
            assert round_robin_position(rank, mine, [k for k in keys if k is not mine]) == place


def test_the_next_job_is_first_and_a_lone_key_is_fifo() -> None:
    a = WaitingKey("a", 5.0, (1.0, "x"), 4)
    fresh = WaitingKey("b", None, (9.0, "y"), 2)
    assert [round_robin_position(r, a, []) for r in (1, 2, 3, 4)] == [1, 2, 3, 4]
    assert round_robin_position(1, fresh, [a]) == 1 and round_robin_position(1, a, [fresh]) == 2
    assert round_robin_position(2, a, [fresh]) == 4  # b, a, b, then a's second
