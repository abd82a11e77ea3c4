# packaging/static/debsrc.sh - sourced by packaging/build-static and
# packaging/static-versions: a private set of deb-src entries derived at run
# time from this machine's own apt sources, and apt wrappers that use it.
# /etc/apt is only read. No mirror is named here: the URIs are the machine's.
#
#   debsrc_init DIR      derive DIR/sources.list.d/*.sources, make DIR/lists
#   debsrc_update        apt-get update into DIR/lists (once per DEBSRC_MAX_AGE s)
#   debsrc_apt ARGS      apt-get with the private lists
#   debsrc_cache ARGS    apt-cache with the private lists
#   debsrc_versions PKG  the versions of source package PKG, newest first

DEBSRC_DIR=
DEBSRC_MAX_AGE=${DEBSRC_MAX_AGE:-21600}

# deb822 stanzas: keep those whose Types has "deb", with Types: deb-src.
_debsrc_from_deb822() {
	awk '
	function flush() {
		if (n && deb && enabled) {
			print "Types: deb-src"
			for (i = 1; i <= n; i++) print lines[i]
			print ""
		}
		n = 0; deb = 0; enabled = 1
	}
	BEGIN { n = 0; deb = 0; enabled = 1 }
	/^[ \t]*#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^Types:/ {
		for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1
		cont = 0; next
	}
	/^Enabled:/ { if ($2 ~ /^(no|false|0)$/) enabled = 0; next }
	{ lines[++n] = $0 }
	END { flush() }' "$1"
}

# one-line entries: "deb [opts] uri suite comps" -> "deb-src ...".
_debsrc_from_list() {
	sed -n 's/^[[:space:]]*deb[[:space:]]\+/deb-src /p' "$1"
}

debsrc_init() {
	DEBSRC_DIR=$1
	mkdir -p "$DEBSRC_DIR/sources.list.d" "$DEBSRC_DIR/lists/partial" \
		"$DEBSRC_DIR/cache/archives/partial"
	local tmp=$DEBSRC_DIR/sources.list.d.new f base
	rm -rf "$tmp"; mkdir -p "$tmp"
	shopt -s nullglob
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		base=${f##*/}
		_debsrc_from_list "$f" >"$tmp/from-${base%.list}.list"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		base=${f##*/}
		_debsrc_from_deb822 "$f" >"$tmp/from-$base"
	done
	shopt -u nullglob
	for f in "$tmp"/*; do [ -s "$f" ] || rm -f "$f"; done
	if ! ls "$tmp"/* >/dev/null 2>&1; then
		echo "debsrc: no 'deb' entry found in /etc/apt/sources.list{,.d/*.list,.d/*.sources}" >&2
		return 1
	fi
	# keep the lists when the derived entries did not change
	if ! diff -qr "$tmp" "$DEBSRC_DIR/sources.list.d" >/dev/null 2>&1; then
		rm -rf "$DEBSRC_DIR/sources.list.d"
		mv "$tmp" "$DEBSRC_DIR/sources.list.d"
		rm -f "$DEBSRC_DIR/updated"
	else
		rm -rf "$tmp"
	fi
}

_debsrc_opts() {
	DEBSRC_OPTS=(-o Dir::Etc::SourceList=/dev/null
		-o Dir::Etc::SourceParts="$DEBSRC_DIR/sources.list.d"
		-o Dir::State::Lists="$DEBSRC_DIR/lists"
		-o Dir::Cache="$DEBSRC_DIR/cache"
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
	# as root apt downloads as _apt, who may not reach this tree
	[ "$(id -u)" -ne 0 ] || DEBSRC_OPTS+=(-o APT::Sandbox::User=root)
}

debsrc_apt() { _debsrc_opts; apt-get "${DEBSRC_OPTS[@]}" "$@"; }
debsrc_cache() { _debsrc_opts; apt-cache "${DEBSRC_OPTS[@]}" "$@"; }

debsrc_update() {
	local stamp=$DEBSRC_DIR/updated now
	now=$(date +%s)
	if [ -f "$stamp" ] && [ $((now - $(stat -c %Y "$stamp"))) -lt "$DEBSRC_MAX_AGE" ] &&
		[ "${DEBSRC_FORCE_UPDATE:-0}" = 0 ]; then
		return 0
	fi
	echo "debsrc: apt-get update (deb-src lists under $DEBSRC_DIR)" >&2
	debsrc_apt -qq update >&2 || { echo "debsrc: apt-get update failed" >&2; return 1; }
	touch "$stamp"
}

# Versions of a source package, newest first (apt-cache does not sort them).
debsrc_versions() {
	local v list=() out=() i j t
	while read -r v; do list+=("$v"); done < <(debsrc_cache showsrc --only-source "$1" 2>/dev/null |
		sed -n 's/^Version: //p' | sort -u)
	# insertion sort with dpkg's ordering, newest first
	for v in "${list[@]}"; do
		out+=("$v"); i=$((${#out[@]} - 1))
		while [ "$i" -gt 0 ] && dpkg --compare-versions "${out[i]}" gt "${out[i-1]}"; do
			t=${out[i-1]}; out[i-1]=${out[i]}; out[i]=$t; i=$((i - 1))
		done
	done
	[ ${#out[@]} -gt 0 ] && printf '%s\n' "${out[@]}"
}
