# canneal: simulated annealing of a chip netlist's routing cost; pthreads
# swap netlist elements' locations with lock-free atomic pointer swaps
# (AtomicPtr.h over the BSD atomic.h headers in src/atomic/).
# patches/canneal-gcc-atomic.patch: atomic/ has no ARM or RISC-V header, so
# add atomic/gcc/atomic.h (pointer compare-and-set, load-acquire and
# store-release from the GCC __atomic builtins) for __arm__, __aarch64__
# and __riscv; and fix the ENABLE_TRHEADS typo in AtomicPtr::Checkin(),
# which made releasing a checked-out pointer a plain store with no release
# ordering (harmless only on x86).
# patches/canneal-entry-pt-return.patch: the thread function entry_pt()
# fell off its end; at -O2 g++ then lets it run on into the next function.
# Built -O2 like the other programs, not with PARSEC Makefile's -O0 -g.
# -Wno-register: MersenneTwister.h uses the C++17-removed `register`.

build_canneal() {
    src=$1
    bin=$2
    cd "$src"
    for p in gcc-atomic entry-pt-return; do
        patch -p1 < "$PARSEC_PATCHES/canneal-$p.patch"
    done
    cd src
    $CXX $CXXFLAGS -Wno-register -DENABLE_THREADS annealer_thread.cpp rng.cpp \
        netlist.cpp main.cpp netlist_elem.cpp $LDFLAGS -lm -o "$bin"
}
