# bash completion for alignseg and alignseg-viewer (installed as
# completions/alignseg and completions/alignseg-viewer).
# Commands and options are read from the programs' own --help texts, so the
# completion knows what the installed version knows; option arguments are
# completed by their kind: checkpoints (.pth, .safetensors), images (.png,
# .jpg), folders, .npy files, or the option's fixed values.

# The option column of a --help text: "-m, --model FILE" lines (up to the
# Example section), one per line.
_alignseg_help_terms()
{
    "$@" --help 2> /dev/null | LC_ALL=C awk '
        /^[ \t]*Examples?:[ \t]*$/ { exit }
        /^ +-/ { match($0, /^ +/); if (RLENGTH > 12) next
                 sub(/^ +/, ""); sub(/  .*/, ""); print }'
}

# The word after an option in its term ("--model FILE" -> FILE, "--size=PIXELS" -> PIXELS)
_alignseg_arg_of()
{
    local opt=$1 t w found
    shift
    while IFS= read -r t; do
        found=""
        for w in ${t//,/ }; do
            if [[ $w == -* ]]; then
                [[ $w == "$opt" || $w == "$opt="* ]] && found=1
                [[ $found && $w == *=* ]] && { printf '%s\n' "${w#*=}"; return 0; }
            elif [[ $found ]]; then
                printf '%s\n' "$w"
                return 0
            fi
        done
        [[ $found ]] && { echo; return 0; }
    done < <(_alignseg_help_terms "$@")
    return 1
}

_alignseg_complete_arg()
{
    local prog=$1 opt=$2 arg=$3 cur=$4
    case $opt in
        --format) # comma-separated list
            local prefix="" 
            [[ $cur == *,* ]] && prefix=${cur%,*},
            COMPREPLY=($(compgen -P "$prefix" -W "voc masks coco labelme all" -- "${cur##*,}"))
            return ;;
        --protocol) COMPREPLY=($(compgen -W "reference hungarian" -- "$cur")); return ;;
        --pairing) COMPREPLY=($(compgen -W "reference same-image" -- "$cur")); return ;;
        --init-prototypes) COMPREPLY=($(compgen -W "random kmeans" -- "$cur")); return ;;
        --random-backbone)
            COMPREPLY=($(compgen -W "vit_small16 vit_small8 vit_base16 vit_base8" -- "$cur")); return ;;
        --unnamed) COMPREPLY=($(compgen -W "background ignore" -- "$cur")); return ;;
        --view) COMPREPLY=($(compgen -W "segmentation attention prototypes similarity" -- "$cur")); return ;;
        --shard) COMPREPLY=($(compgen -W "slurm" -- "$cur")); return ;;
        -m | --model | -b | --backbone | --resume)
            _alignseg_files '@(pth|safetensors|PTH)' "$cur"; return ;;
    esac
    case $arg in
        *'|'*) COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur")) ;;
        DIR | OUTDIR | RUNDIR | *_DIR) _alignseg_dirs "$cur" ;;
        *.npy) _alignseg_files '@(npy)' "$cur" ;;
        *.pth) _alignseg_files '@(pth)' "$cur" ;;
        FILE | *FILE*) _alignseg_files '' "$cur" ;;
        *) COMPREPLY=() ;;
    esac
}

# Files whose name matches the extglob pattern (all files if empty), and folders.
_alignseg_files()
{
    local pat=$1 cur=$2 f
    COMPREPLY=()
    local IFS=$'\n'
    shopt -s extglob 2> /dev/null
    for f in $(compgen -f -- "$cur"); do
        if [[ -d $f ]]; then
            COMPREPLY+=("$f/")
        elif [[ -z $pat || $f == *.$pat ]]; then
            COMPREPLY+=("$f")
        fi
    done
    compopt -o filenames -o nospace 2> /dev/null
}

_alignseg_dirs()
{
    local IFS=$'\n' f
    COMPREPLY=()
    for f in $(compgen -d -- "$1"); do COMPREPLY+=("$f/"); done
    compopt -o filenames -o nospace 2> /dev/null
}

_alignseg_options()
{
    local cur=$1 t
    shift
    COMPREPLY=($(compgen -W "$(_alignseg_help_terms "$@" | grep -o -- '--\{0,1\}[A-Za-z][A-Za-z0-9-]*' | sort -u)" -- "$cur"))
}

_alignseg()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local prog=${COMP_WORDS[0]}
    if ((COMP_CWORD == 1)); then
        local cmds
        cmds=$("$prog" --help 2> /dev/null | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on { exit }')
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi
    local cmd=${COMP_WORDS[1]} arg
    if [[ $prev == -* ]] && arg=$(_alignseg_arg_of "$prev" "$prog" "$cmd") && [[ -n $arg ]]; then
        _alignseg_complete_arg "$prog" "$prev" "$arg" "$cur"
        return
    fi
    if [[ $cur == -* ]]; then
        _alignseg_options "$cur" "$prog" "$cmd"
        return
    fi
    case $cmd in
        merge) _alignseg_dirs "$cur" ;;
        segment | export | eval) _alignseg_files '@(png|jpg|jpeg|PNG|JPG|JPEG)' "$cur" ;;
        *) COMPREPLY=() ;;
    esac
}

_alignseg_viewer()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} arg
    local prog=${COMP_WORDS[0]}
    if [[ $cur == --*=* ]]; then # --model=FILE
        prev=${cur%%=*}
        cur=${cur#*=}
    fi
    if [[ $prev == -* ]] && arg=$(_alignseg_arg_of "$prev" "$prog") && [[ -n $arg ]]; then
        _alignseg_complete_arg "$prog" "$prev" "$arg" "$cur"
        return
    fi
    if [[ $cur == -* ]]; then
        _alignseg_options "$cur" "$prog"
        return
    fi
    _alignseg_files '@(png|jpg|jpeg|PNG|JPG|JPEG)' "$cur"
}

complete -F _alignseg alignseg
complete -F _alignseg_viewer alignseg-viewer
