# fluidanimate: SPH fluid simulation, one pthread per sub-grid (the thread
# count must be a power of two), per-cell locks and PARSEC's own barrier.
# Built as PARSEC's Makefile and Makefile.pthreads do (their flags,
# -Wno-invalid-offsetof included).  fluidcmp, PARSEC's checker for .fluid
# files, is built for the build host as <bin>-fluidcmp; its --ptol/--vtol
# compare particles by index, which only a 1-thread run keeps stable.

build_fluidanimate() {
    src=$1
    bin=$2
    cd "$src/src"
    $CXX $CXXFLAGS -Wno-invalid-offsetof -D_GNU_SOURCE -D__XOPEN_SOURCE=600 \
        pthreads.cpp cellpool.cpp parsec_barrier.cpp $LDFLAGS -o "$bin"
    g++ -O2 -Wno-invalid-offsetof -o "$bin-fluidcmp" fluidcmp.cpp
}
