# freqmine: frequent itemset mining (FP-growth), OpenMP.  Built as
# PARSEC's gcc-openmp.bldconf and src/Makefile do: every source with
# -fopenmp (-Wno-deprecated), here linked statically with libgomp.
# Threads: OMP_NUM_THREADS.
# The inputs are tiny (simdev: 1000 transactions cut from IBM's
# T10I4D100K; even support 1 mines it in 0.2 s), so <bin>-inputgen (a host
# sh/awk script) makes a bigger one: "freqmine-inputgen IN.dat COPIES
# OUT.dat" writes IN COPIES times, copy c with every item i renamed
# (i + 37*c) mod 1000 (the items are < 1000), so the copies share items
# and co-occur as a larger dataset of the same kind would.

build_freqmine() {
    src=$1
    bin=$2
    cd "$src/src"
    $CXX $CXXFLAGS -fopenmp -Wno-deprecated \
        fpmax.cpp data.cpp fp_tree.cpp buffer.cpp fsout.cpp fp_node.cpp \
        wtime.cpp $LDFLAGS -fopenmp -o "$bin"
    cat > "$bin-inputgen" <<'GEN'
#!/bin/sh
# freqmine-inputgen IN.dat COPIES OUT.dat: IN COPIES times, item i of
# copy c renamed (i + 37*c) mod 1000.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 IN.dat COPIES OUT.dat" >&2; exit 1; }
awk -v k="$2" '{ t[NR] = $0 }
END {
    for (c = 0; c < k; c++)
        for (i = 1; i <= NR; i++) {
            n = split(t[i], f, " ")
            s = ""
            for (j = 1; j <= n; j++)
                s = s ((f[j] + 37 * c) % 1000) " "
            print s
        }
}' "$1" > "$3"
GEN
    chmod +x "$bin-inputgen"
}
