# Shared by the bench scripts (sourced): timing steps, the results table and the README block.

# timed NAME COMMAND...: runs COMMAND (output in $work/last.log), appends `NAME<TAB>seconds`
# to $results; a failure shows the log's tail and ends the script through `die`.
timed() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" > "$work/last.log" 2>&1 || { tail -20 "$work/last.log" >&2; die "$name failed"; }
  end=$(date +%s.%N)
  printf '%s\t%s\n' "$name" "$(echo "$end - $start" | bc -l)" >> "$results"
}

# exits CODE COMMAND...: succeeds when COMMAND exits with CODE (`terraform plan
# -detailed-exitcode` says 2 for "changes").
exits() {
  local want=$1 rc=0
  shift
  "$@" || rc=$?
  [ "$rc" = "$want" ] || { echo "exit status $rc, not $want" >&2; return 1; }
}

# median_table RESULTS FIRST_HEADER: a Markdown table of `name<TAB>seconds` lines, one row per
# name in first-seen order, with the median, min–max and number of runs.
median_table() {
  awk -F'\t' -v first="$2" '
    { n[$1]++; v[$1, n[$1]] = $2; if (!($1 in seen)) { seen[$1] = 1; names[++k] = $1 } }
    END {
      print "| " first " | median (s) | min–max (s) | runs |"
      print "|---|---:|---:|---:|"
      for (i = 1; i <= k; i++) {
        name = names[i]; c = n[name]
        for (a = 1; a <= c; a++) s[a] = v[name, a]
        for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
        med = (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
        printf "| %s | %.2f | %.2f–%.2f | %d |\n", name, med, s[1], s[c], c
      }
    }' "$1"
}

# write_readme_block README MARKER SECTION_TITLE HEADER TABLE: puts HEADER and TABLE between
# `<!-- MARKER -->` and `<!-- /MARKER -->` in README, or appends them under SECTION_TITLE.
write_readme_block() {
  python3 - "$@" <<'PY'
import re, sys
path, marker, title, header, table = sys.argv[1:]
text = open(path).read()
block = f"<!-- {marker} -->\n{header}\n\n{table}\n<!-- /{marker} -->"
if f"<!-- {marker} -->" in text:
    text = re.sub(rf"<!-- {marker} -->.*<!-- /{marker} -->", lambda _: block, text, flags=re.S)
else:
    text = text.rstrip() + f"\n\n## {title}\n\n" + block + "\n"
open(path, "w").write(text)
PY
}

# peak_rss_in DIR...: the peak RSS (kB) over every provider process whose GNU time report
# (`/usr/bin/time -v -o DIR/PID.txt`) is in one of the DIRs; nothing when there is none.
peak_rss_in() {
  local dir
  for dir in "$@"; do cat "$dir"/*.txt 2>/dev/null; done |
    awk -F: '/Maximum resident set size/ { v = $2 + 0; if (v > m) m = v } END { if (m) print m }'
}
