"""Reading and splitting LAMMPS input scripts for pair_style mlip (no LAMMPS needed)."""

import pytest

from mlip.integrations._lammps_input import LammpsInputError, commands, parse_input
from mlip.integrations.lammps import read_thermo

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


LOG = """LAMMPS (22 Jul 2025)
   Step          Time           Temp          Press          Volume
         0   0              600            1200.5         1000
        50   0.05           450.25        -300           1001.5
Loop time of 3.5 on 1 procs for 50 steps with 16 atoms
WARNING: something (src/fix.cpp:10)
   Step          Time           Temp          Press          Volume
        50   0.05           450.25        -300           1001.5
       100   0.1            500           10             1002
Total wall time: 0:00:04
"""


def test_thermo_columns_of_every_run_in_order(tmp_path):
    log = tmp_path / "log.lammps"
    log.write_text(LOG)
    thermo = read_thermo(log)
    assert list(thermo) == ["Step", "Time", "Temp", "Press", "Volume"]
    assert thermo["Step"].tolist() == [0, 50, 100]  # the continued run's first row once
    assert thermo["Temp"].tolist() == [600, 450.25, 500]
    assert thermo["Volume"][-1] == 1002


def test_a_log_without_thermo_or_with_changed_columns_is_refused(tmp_path):
    log = tmp_path / "log.lammps"
    log.write_text("LAMMPS (22 Jul 2025)\nERROR: Unknown command\n")
    with pytest.raises(ValueError, match="log.lammps: no thermo output"):
        read_thermo(log)
    first_header = "Temp          Press          Volume\n       "
    log.write_text(LOG.replace(first_header, "Temp Press\n       ", 1))
    with pytest.raises(ValueError, match="different thermo columns"):
        read_thermo(log)
