# Kaldi-style option parsing for recipe scripts; source it after setting defaults.
#
# Every `--some-name VALUE` (or `--some-name=VALUE`) sets the shell variable some_name,
# which must already have a default; an unknown option is an error, and so is a value that
# is not a whole number for an option whose default is one (`--stage abc` would otherwise
# fail every stage test, run nothing and exit 0). `--help` prints the script's
# $help_message. Recipes take no positional arguments: a word that is not an option is an
# error, since the options after it would otherwise be silently ignored.
_po_usage() { echo "${help_message:-usage: $0 [options]}"; }
_po_int='^-?[0-9]+$'
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) _po_usage; exit 0 ;;
    --*=*) _po_name=${1%%=*}; _po_value=${1#*=}; shift ;;
    --*)
      _po_name=$1
      if [ $# -lt 2 ]; then echo "$0: option $_po_name needs a value" >&2; exit 1; fi
      _po_value=$2; shift 2 ;;
    *) echo "$0: unexpected argument '$1'; options are '--name value'" >&2; _po_usage >&2; exit 1 ;;
  esac
  _po_var=${_po_name#--}; _po_var=${_po_var//-/_}
  if [ -z "${!_po_var+set}" ] || ! [[ $_po_var =~ ^[a-z_][a-z0-9_]*$ ]]; then
    echo "$0: unknown option $_po_name" >&2; _po_usage >&2; exit 1
  fi
  if [[ ${!_po_var} =~ $_po_int ]] && ! [[ $_po_value =~ $_po_int ]]; then
    echo "$0: option $_po_name takes a whole number (got '$_po_value')" >&2; exit 1
  fi
  printf -v "$_po_var" '%s' "$_po_value"
done
unset _po_name _po_value _po_var _po_int
