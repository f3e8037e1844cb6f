# streamcluster: online k-median clustering of generated points, pthreads
# with PARSEC's own barrier (parsec_barrier.cpp), as PARSEC's Makefile
# builds it for version=pthreads.  That barrier spins before it blocks
# (ENABLE_SPIN_BARRIER), so with more threads than CPUs most of the CPU
# time goes to waiting: kept, as it is what PARSEC runs.

build_streamcluster() {
    src=$1
    bin=$2
    cd "$src/src"
    $CXX $CXXFLAGS -DENABLE_THREADS streamcluster.cpp parsec_barrier.cpp \
        $LDFLAGS -o "$bin"
}
