"""pytest set-up for tests/dist: the marker of the multi-node cases.

Cases that need a cluster of 2 or more nodes carry the `multinode` marker;
with DQEMU_DIST_MAX_NODES=1 they are deselected (test_dist.py does not even
generate the per-program cases beyond that size), so the suite then runs
exactly the single-node cases.
"""
import distproc


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "multinode: needs a cluster of 2 or more nodes (--nodes N>1, --worker); "
        "deselected when DQEMU_DIST_MAX_NODES=1")


def pytest_collection_modifyitems(config, items):
    if distproc.max_nodes() >= 2:
        return
    keep = [item for item in items if item.get_closest_marker("multinode") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if item.get_closest_marker("multinode")])
        items[:] = keep
