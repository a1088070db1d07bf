"""Reading and splitting LAMMPS input scripts for pair_style mlip (no LAMMPS needed)."""

import pytest

from mlip.integrations._lammps_input import LammpsInputError, commands, parse_input

SCRIPT = """# a comment
units metal   # trailing comment
read_data data.lmp
pair_style &
  mlip
pair_coeff * * Cu &
   O  # two elements
print "a # is not a comment"
run 10
"""


def test_commands_join_continuations_and_drop_comments():
    cmds = commands(SCRIPT.splitlines(keepends=True))
    assert [c.words[0] for c in cmds] == [
        "units",
        "read_data",
        "pair_style",
        "pair_coeff",
        "print",
        "run",
    ]
    assert cmds[2].words == ("pair_style", "mlip") and (cmds[2].first, cmds[2].last) == (3, 4)
    assert cmds[3].words == ("pair_coeff", "*", "*", "Cu", "O")
    assert cmds[4].text == 'print "a # is not a comment"'


def test_the_script_is_split_at_pair_coeff_with_pair_style_zero(tmp_path):
    path = tmp_path / "in.lmp"
    path.write_text(SCRIPT)
    script = parse_input(path, cutoff=5.0)
    assert script.elements == ("Cu", "O") and script.pair_coeff_line == 6
    assert "pair_style zero 5.0\n" in script.before and "mlip" not in script.before
    assert script.before.endswith("read_data data.lmp\npair_style zero 5.0\n\npair_coeff * *\n")
    assert script.after == 'print "a # is not a comment"\nrun 10\n'
    # Line numbers stay those of the input: continuation lines become empty lines.
    assert script.before.count("\n") == 6  # as many lines as the input before pair_coeff


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "units real\npair_style mlip\npair_coeff * * Cu\n",
            "line 1: units real: pair_style mlip needs units metal",
        ),
        ("pair_style hybrid mlip lj/cut 3\npair_coeff * * Cu\n", "pair_style hybrid mlip lj/cut 3"),
        ("pair_style mlip model.pt\npair_coeff * * Cu\n", "pair_style mlip takes no arguments"),
        ("pair_style mlip\npair_style mlip\n", "line 2: a second pair_style mlip"),
        ("pair_coeff * * Cu\npair_style mlip\n", "line 1: pair_coeff comes before pair_style mlip"),
        (
            "pair_style mlip\npair_coeff 1 1 Cu\n",
            "pair_coeff 1 1 Cu: pair_style mlip needs pair_coeff * *",
        ),
        ("pair_style mlip\npair_coeff * *\n", "pair_coeff * * names no elements"),
        ("pair_style mlip\npair_coeff * * Cu\npair_coeff * * O\n", "line 3: a second pair_coeff"),
        ("units metal\nrun 0\n", "no pair_style mlip command"),
        ("pair_style mlip\nrun 0\n", "pair_style mlip but no pair_coeff"),
    ],
)
def test_scripts_mlip_cannot_run_are_refused_naming_the_line(tmp_path, body, message):
    path = tmp_path / "in.lmp"
    path.write_text(body)
    with pytest.raises(LammpsInputError, match="in.lmp") as err:
        parse_input(path, cutoff=5.0)
    assert message in str(err.value)


def test_a_missing_input_is_named(tmp_path):
    with pytest.raises(LammpsInputError, match="cannot read LAMMPS input .*nope.lmp"):
        parse_input(tmp_path / "nope.lmp", cutoff=5.0)
