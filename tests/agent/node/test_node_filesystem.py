import os

from cloudmon.agent.node.filesystem import read_filesystem, usage


def _statvfs(blocks, bfree, frsize, bavail=0):
    # bsize frsize blocks bfree bavail files ffree favail flag namemax
    return os.statvfs_result((4096, frsize, blocks, bfree, bavail, 0, 0, 0, 0, 255))


def test_usage_as_df_shows_it():
    # Used counts reserved blocks too: blocks - bfree, not blocks - bavail.
    assert usage(_statvfs(blocks=1000, bfree=300, frsize=4096, bavail=250)) == (
        1000 * 4096,
        700 * 4096,
    )


def test_fragment_size_is_the_unit():
    assert usage(_statvfs(blocks=10, bfree=10, frsize=1024)) == (10240, 0)


def test_reads_the_real_file_system(tmp_path):
    st = os.statvfs(tmp_path)
    total, used = read_filesystem(str(tmp_path))
    assert total == st.f_blocks * st.f_frsize
    assert 0 <= used <= total
    assert type(total) is int and type(used) is int


def test_missing_root_is_none(tmp_path):
    assert read_filesystem(str(tmp_path / "absent")) is None
