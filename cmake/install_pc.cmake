# Install-time half of nabla.pc: fills in the prefix that `cmake --install --prefix P` or
# cpack chose, then installs the file (DESTDIR and the install manifest are honoured).
file(READ "${NB_PC_TEMPLATE}" nb_pc)
string(REPLACE "@NB_PC_PREFIX@" "${CMAKE_INSTALL_PREFIX}" nb_pc "${nb_pc}")
file(WRITE "${NB_PC_OUT}" "${nb_pc}")
file(INSTALL "${NB_PC_OUT}" DESTINATION "${CMAKE_INSTALL_PREFIX}/${NB_PC_LIBDIR}/pkgconfig")
