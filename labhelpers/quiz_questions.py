"""The self-check questions of :mod:`labhelpers.quiz`: generated, do not edit.

Written by ``python -m labhelpers.course.generated`` from the instructor's table ``instructor/quiz.toml`` (not part
of this package). Each stored answer is kept only as SHA-256 digests of the question's salt and the accepted
normalised answers; each explanation is base64 of its text. See labhelpers/quiz.py.
"""

QUESTIONS = {
    '00_reward_during_training': dict(
        choices='abcd', tolerance=0.0, salt='7935ca63346d956b',
        digests=(
            '7638cc31d3abe0361a84dc7d83081e9894e53bc53748382c80b7c99eba3b27f4',
        ),
        explanation=(
            'UFBPIChsYWIgMDQpIHNhbXBsZXMgaXRzIG93biBhbnN3ZXJzIHdoaWxlIGl0IHRyYWlucywgc28gc29tZXRoaW5nIG11c3Qgc2Nv'
            'cmUgZXZlcnkgc2FtcGxlIG9uIHRoZSBzcG90OiBhIHJld2FyZCBtb2RlbC4gRFBPIChsYWIgMDMpIG5ldmVyIHNhbXBsZXMgZHVy'
            'aW5nIHRyYWluaW5nIGFuZCBuZWVkcyBubyByZXdhcmQgbW9kZWw7IGl0IHJlYWRzIHRoZSBwcmVmZXJlbmNlcyBkaXJlY3RseS4g'
            'U0ZUIChsYWIgMDEpIGNvcGllcyBkZW1vbnN0cmF0aW9ucy4='),
    ),
    '00_dpo_models': dict(
        choices='', tolerance=0.0, salt='7286dfb3816e826f',
        digests=(
            '502e879e65ce8ff338685da74c733de5e081cc4c07803280db3483af3584f7be',
        ),
        explanation=(
            'VHdvOiB0aGUgcG9saWN5IGJlaW5nIHRyYWluZWQgYW5kIGEgZnJvemVuIHJlZmVyZW5jZSBjb3B5IG9mIHdoZXJlIGl0IHN0YXJ0'
            'ZWQgKHVzdWFsbHkgdGhlIFNGVCBtb2RlbCkuIERQTyBoYXMgbm8gcmV3YXJkIG1vZGVsIGF0IGFsbDsgdGhlIHJld2FyZCBpcyBp'
            'bXBsaWNpdCBpbiDOssK3bG9nKM+AL8+AX3JlZikuIExhYiAwMyBwYXNzZXMgZXhhY3RseSB0aGVzZSB0d28gbW9kZWxzIHRvIERQ'
            'T1RyYWluZXIu'),
    ),
    '00_sft_first': dict(
        choices='abc', tolerance=0.0, salt='ce947f23a638e112',
        digests=(
            '65ca3217c54d0619064d8ae2758a542500e0d7b81d73fea32a8c0ef706e70cb0',
        ),
        explanation=(
            'UHJlZmVyZW5jZSBtZXRob2RzIGltcHJvdmUgYW5zd2VycyB0aGUgbW9kZWwgYWxyZWFkeSBnaXZlcy4gUFBPIGxlYXJucyBmcm9t'
            'IHRoZSBtb2RlbCdzIG93biBzYW1wbGVzIGFuZCBEUE8gbWVhc3VyZXMgZXZlcnkgY2hhbmdlIGFnYWluc3QgdGhlIHN0YXJ0aW5n'
            'IG1vZGVsLCBzbyBib3RoIG5lZWQgYSBtb2RlbCB0aGF0IGFscmVhZHkgYW5zd2VycyBpbiB0aGUgZXhwZWN0ZWQgZm9ybWF0OiB0'
            'aGF0IGlzIHdoYXQgU0ZUIHByb3ZpZGVzLg=='),
    ),
    '00_tiny_profile': dict(
        choices='abc', tolerance=0.0, salt='352a8f2491e4b7ec',
        digests=(
            '22bb3c81f1a04babadabba6c67e52bbe37c3feb729a9a8629ad651a941e2e634',
        ),
        explanation=(
            'VGhlIHRpbnkgcHJvZmlsZSBydW5zIHRoZSBzYW1lIGNlbGxzIHdpdGggaGFsZi1taWxsaW9uLXBhcmFtZXRlciBtb2RlbHMgb24g'
            'c3ludGhldGljIGRhdGEuIFRoZSBtZWNoYW5pc21zIGFuZCB0aGUgZWZmZWN0cyBhcmUgcmVhbCAodGhlIGNoZWNrcyBhc3NlcnQg'
            'dGhlbTogbG9zc2VzIGZhbGwsIG1hc2tzIG1hdGNoLCByZXdhcmRzIHJpc2UpOyB0aGUgdGV4dHMgYXJlIHRveSB0ZXh0cywgc28g'
            'anVkZ2UgcXVhbGl0eSBpbiB0aGUgZnVsbCBwcm9maWxlLg=='),
    ),
    '01_trained_positions': dict(
        choices='', tolerance=0.0, salt='b0fc7c77fcb3cd85',
        digests=(
            '626122a2af0dc579dc239b545fadbff35e955acbc0c0ea614de0e592e5af5843',
        ),
        explanation=(
            'RXZlcnkgcG9zaXRpb24gdXAgdG8gYW5kIGluY2x1ZGluZyB0aGUgcmVzcG9uc2UgdGVtcGxhdGUgZ2V0cyAtMTAwLCBzbyBvbmx5'
            'IHRoZSAzMCDiiJIgMjIgPSA4IGFuc3dlciB0b2tlbnMgKHRoZSBlbmQtb2Ytc2VxdWVuY2UgdG9rZW4gaW5jbHVkZWQpIGtlZXAg'
            'dGhlaXIgaWRzIGFzIGxhYmVscy4='),
    ),
    '01_ignore_index': dict(
        choices='abc', tolerance=0.0, salt='3f001b1c7b21eeb9',
        digests=(
            'b758fa6eef435c9831b47ecb442224da3c75fdf6fb34a3c8e366032698efd347',
        ),
        explanation=(
            'QSBsYWJlbCBvZiAtMTAwIGlzIGNyb3NzX2VudHJvcHkncyBkZWZhdWx0IGlnbm9yZV9pbmRleDogdGhlIHBvc2l0aW9uIGFkZHMg'
            'bm90aGluZyB0byB0aGUgc3VtIGFuZCBpcyBub3QgY291bnRlZCBpbiB0aGUgbWVhbi4gdG9rZW5fbG9zc2VzIGluIHNlY3Rpb24g'
            'NCBjb3VudHMgcmVzcG9uc2UgYW5kIHByb21wdCB0b2tlbnMgYXBhcnQgd2l0aCB0aGUgc2FtZSBtYXNrcy4='),
    ),
    '01_self_instruct': dict(
        choices='abc', tolerance=0.0, salt='d188187a8d074850',
        digests=(
            '7d90ca3e6de1678d01e0630d8585e1020ebfd5a50b100734f8c635d5ba1bcab5',
        ),
        explanation=(
            'Q29kZUFscGFjYSBmb2xsb3dzIFN0YW5mb3JkIEFscGFjYSdzIFNlbGYtSW5zdHJ1Y3QgcmVjaXBlOiBhbiBPcGVuQUkgbW9kZWwg'
            'KHRleHQtZGF2aW5jaS0wMDMpIHdyb3RlIHRoZSBpbnN0cnVjdGlvbnMgYW5kIHRoZSBhbnN3ZXJzIGZyb20gYSBmZXcgc2VlZCB0'
            'YXNrcy4gTm9ib2R5IGNoZWNrZWQgZWFjaCBhbnN3ZXIsIHNvIHNvbWUgYXJlIHdyb25nOiBhIG1vZGVsIGNhbiBjb3B5IHRoZWly'
            'IG1pc3Rha2VzIHRvby4='),
    ),
    '01_predict_prompt_loss': dict(
        choices='abc', tolerance=0.0, salt='76b28afaac53fc6b',
        digests=(),
        explanation=(
            'VGhpcyBydW46IHByb21wdCBsb3NzIHttYXNrZWQ6LjJmfSBuYXRzL3Rva2VuIHdpdGggbWFza2luZywge3VubWFza2VkOi4yZn0g'
            'd2l0aG91dC4gT25seSB0aGUgdW5tYXNrZWQgcnVuIGlzIHRyYWluZWQgb24gdGhlIHByb21wdCB0b2tlbnMsIHNvIG9ubHkgaXQg'
            'bGVhcm5zIHRvIHByZWRpY3QgdGhlbTsgdGhlIG1hc2tlZCBydW4gbmV2ZXIgcmVjZWl2ZXMgYSBncmFkaWVudCBmcm9tIHRoZW0u'),
    ),
    '02_tie_loss': dict(
        choices='', tolerance=0.01, salt='0d3124e03f496f25',
        digests=(
            '77ae3996f55519faed9b3338e66391062b37fc6043e75e7bdbefdcbeab0beb0a',
            '4a594d49d7c4a69d442f706a194323a88e5543c16bdc657f9a680ec9fd63be1f',
            'fac4fd61f98818007f392818f9f781fe5159177d8dfe44264afa3eca75c2108d',
        ),
        explanation=(
            'V2l0aCByX2MgPSByX3IgdGhlIGxvc3MgaXMg4oiSbG9nIM+DKDApID0g4oiSbG9nIMK9ID0gbG9nIDIg4omIIDAuNjkzIG5hdHM6'
            'IHRoZSBkb3R0ZWQgbGluZSBvZiB0aGUgbG9zcyBwbG90LiBBIHJld2FyZCBtb2RlbCB0aGF0IGNhbm5vdCB0ZWxsIHR3byBhbnN3'
            'ZXJzIGFwYXJ0IHNpdHMgdGhlcmUu'),
    ),
    '02_reward_offset': dict(
        choices='abc', tolerance=0.0, salt='b766508afef8be89',
        digests=(
            '5d5bd0c83128b90ba2186b0a27fbc36565a123405bc2533faefb60ebd0e7e356',
        ),
        explanation=(
            'VGhlIEJyYWRsZXnigJNUZXJyeSBsb3NzIGRlcGVuZHMgb25seSBvbiByX2Mg4oiSIHJfciwgYW5kIHRoZSBjb25zdGFudCBjYW5j'
            'ZWxzIHRoZXJlLiBUaGF0IGlzIHdoeSBhIHJld2FyZCdzIG9mZnNldCBtZWFucyBub3RoaW5nLCBhbmQgd2h5IGxhYiAwNCBjb21w'
            'YXJlcyByZXdhcmRzLCBub3QgdGhlaXIgbGV2ZWwu'),
    ),
    '02_what_it_reads': dict(
        choices='abc', tolerance=0.0, salt='29b7cb8fc2b4215c',
        digests=(
            '56502e6fa7bca85311cffe96b23e9533fb9ba1124f1fb55a468376a2bfc4229f',
        ),
        explanation=(
            'QSByZXdhcmQgbW9kZWwgcmVhZHMgdGhlIHByb21wdCBhbmQgdGhlIHJlc3BvbnNlIHRvZ2V0aGVyLCBhcyBvbmUgdGV4dCwgYW5k'
            'IHJldHVybnMgb25lIG51bWJlciByZWFkIGF0IHRoZSBsYXN0IHRva2VuIChudW1fbGFiZWxzPTEpLiBJdCB3cml0ZXMgbm8gcmVz'
            'cG9uc2U6IHRoZSBwb2xpY3kgZG9lcy4='),
    ),
    '02_inner_eos': dict(
        choices='abc', tolerance=0.0, salt='241357d377b1b0e2',
        digests=(
            'fc3a81b23dc39440cbc28af3a834573026c7a7147736218bdef7323ee94b39c6',
        ),
        explanation=(
            'VGhlIG9sZCBydWxlIHJlYWRzIHRoZSB0b2tlbiBiZWZvcmUgdGhlIGZpcnN0IHBhZCwgYW5kIHdpdGggcGFkID0gZW9zIHRoYXQg'
            'aXMgdGhlIGlubmVyIGVvczogZXZlcnkgd29yZCBhZnRlciBpdCBpcyBpbnZpc2libGUgdG8gdGhlIHJld2FyZCAodGhlIGNoZWNr'
            'IHBhZF9lb3NfcGl0ZmFsbF9zaG93biku'),
    ),
    '03_models': dict(
        choices='', tolerance=0.0, salt='24d862b322f55794',
        digests=(
            '9eabe78ca791721240b729c280cbc97f965b56d8282d1c56728e1fe99495b817',
        ),
        explanation=(
            'RFBPVHJhaW5lciBnZXRzIG1vZGVsPSAodGhlIHBvbGljeSkgYW5kIHJlZl9tb2RlbD0gKGl0cyBmcm96ZW4gY29weSk6IHR3byBj'
            'YXVzYWwgbGFuZ3VhZ2UgbW9kZWxzLCBubyByZXdhcmQgbW9kZWwgYW5kIG5vIGVuY29kZXIuIFdpdGggcHJlY29tcHV0ZV9yZWZf'
            'bG9nX3Byb2JzIHRoZSByZWZlcmVuY2UgZXZlbiBydW5zIG9ubHkgb25jZSwgYmVmb3JlIHRyYWluaW5nLg=='),
    ),
    '03_loss_at_start': dict(
        choices='', tolerance=0.01, salt='958f0159554b03e3',
        digests=(
            'e8c863ccf0af88b950ff0dc2008e147c9cd80c4951660a8ae0030c44bd47b4ef',
            '7398bdd43d5518f6fcf53660fad9e886a291f3184599ba1b594101117cc39e8f',
            'a0b8e54b4eda8ceb6cc7f5e9b858a9a31bb8e43a803a72f06746efe5d28d36f1',
        ),
        explanation=(
            'QXQgdGhlIHN0YXJ0IM+AID0gz4BfcmVmLCBldmVyeSBtYXJnaW4gaXMgMCBhbmQgdGhlIGxvc3MgaXMg4oiSbG9nIM+DKDApID0g'
            'bG9nIDIg4omIIDAuNjkzLiBXaXRob3V0IHRoZSBsb2csIHRoZSBxdWFudGl0eSDiiJLPgygwKSB3b3VsZCBiZSDiiJIwLjU6IGEg'
            'bmVnYXRpdmUgJ2xvc3MnIHRoYXQgaXMgbm90IGEgbmVnYXRpdmUgbG9nLWxpa2VsaWhvb2QuIFRoaXMgcnVuIG1lYXN1cmVkIHtz'
            'dGFydF9sb3NzOi40Zn0u'),
    ),
    '03_z_cancels': dict(
        choices='abc', tolerance=0.0, salt='42a5b75933d86bdc',
        digests=(
            '55be8569f27be218ce2184b655ae0c375dc79d520037ffa9abb69c498c0ca6b0',
        ),
        explanation=(
            'Wih4KSBzdW1zIG92ZXIgZXZlcnkgcG9zc2libGUgYW5zd2VyIGJ1dCBkZXBlbmRzIG9ubHkgb24gdGhlIHByb21wdCwgc28gaXQg'
            'ZHJvcHMgb3V0IG9mIHIoeCwgeV93KSDiiJIgcih4LCB5X2wpLCBhbmQgQnJhZGxleeKAk1RlcnJ5IG9ubHkgbmVlZHMgdGhhdCBk'
            'aWZmZXJlbmNlLg=='),
    ),
    '03_displacement': dict(
        choices='abc', tolerance=0.0, salt='b7f9d4d340f8841a',
        digests=(
            'a96db6c1c89ce3dd48aa79a8072ef8b8c4c602cb43c710387a3771d810b77063',
        ),
        explanation=(
            'VGhlIGxvc3Mgc2VlcyBvbmx5IHRoZSBtYXJnaW4uIEJvdGggbG9nLXByb2JhYmlsaXRpZXMgbWF5IGZhbGwgYXMgbG9uZyBhcyB0'
            'aGUgcmVqZWN0ZWQgb25lIGZhbGxzIGZhc3RlcjsgdGhpcyBydW4gbW92ZWQgdGhlIGNob3NlbiBhbnN3ZXJzJyBzdW1tZWQgbG9n'
            'LXByb2IgYnkge2RlbHRhOisuMmZ9Lg=='),
    ),
    '04_own_samples': dict(
        choices='abc', tolerance=0.0, salt='a917851c60411e87',
        digests=(
            '50c563a18cd1c6f3074cf05a43adbbbc88cf0e1ace6160388bc6a5b2c6794f8e',
        ),
        explanation=(
            'Tm93aGVyZSwgaW4gZXhwZWN0YXRpb246IEVb4oiHIGxvZyDPgChhKV0gPSDOoyDiiIfPgChhKSA9IOKIhzEgPSAwLCBzbyByYWlz'
            'aW5nIHRoZSBsaWtlbGlob29kIG9mIHdoYXRldmVyIHRoZSBwb2xpY3kgaXRzZWxmIHNhbXBsZWQgY2hhbmdlcyBub3RoaW5nIG9u'
            'IGF2ZXJhZ2UgKHRoaXMgcnVuJ3MgbWVhbiBvdmVyIG1hbnkgc2FtcGxlczoge21sZV9ub3JtOi40Zn0sIGFnYWluc3Qge3BnX25v'
            'cm06LjRmfSBmb3IgdGhlIHJld2FyZC13ZWlnaHRlZCB1cGRhdGUpLiBUaGUgcmV3YXJkIHdlaWdodHMgZ2l2ZSB0aGUgdXBkYXRl'
            'IGl0cyBkaXJlY3Rpb24u'),
    ),
    '04_advantage_sign': dict(
        choices='abc', tolerance=0.0, salt='d19a8b89f6ae1204',
        digests=(
            '89e7bd0fc87771fefffcccb098ff330092e268bde229171f27aab2f3fd9e60e8',
        ),
        explanation=(
            'VGhlIGFkdmFudGFnZSBpcyAwLjMg4oiSIDAuNSA9IOKIkjAuMiA8IDAsIHNvIHRoZSB1cGRhdGUgbG93ZXJzIHRoZSBsb2ctcHJv'
            'YmFiaWxpdHkgb2YgdGhhdCByZXNwb25zZSwgYWx0aG91Z2ggaXRzIHJld2FyZCBpcyBwb3NpdGl2ZTogdGhlIGJhc2VsaW5lIGdp'
            'dmVzIHJld2FyZHMgdGhlaXIgc2lnbi4='),
    ),
    '04_clipped_gradient': dict(
        choices='', tolerance=1e-09, salt='4c95f14fe1c2cb91',
        digests=(
            'b5c68d5121d36716bcb0824c3cb8adfb6a0a61c07e4e097f7b39ef7b455edc6b',
            '3d23879752062f92c047045e3d856317e994c5ac8a5814367705c939741a4944',
            '01f6b1628e66c30c42ff1d593a1f01dd336b64b36b94641433f58582ea792818',
        ),
        explanation=(
            'V2l0aCBBID4gMCBhbmQgz4EgPSAxLjUgPiAxICsgzrUgdGhlIG1pbiBwaWNrcyB0aGUgY2xpcHBlZCB0ZXJtICgxLjLCt0EpLCB3'
            'aGljaCBkb2VzIG5vdCBkZXBlbmQgb24gz4E6IHRoZSBncmFkaWVudCBpcyAwIGFuZCB0aGlzIHRva2VuIHN0b3BzIG1vdmluZy4='),
    ),
    '04_predict_beta0': dict(
        choices='abc', tolerance=0.0, salt='54d8709ebaf45ae5',
        digests=(),
        explanation=(
            'VGhpcyBydW46IGhlbGQtb3V0IEtMIHtrbF9iZXRhOi4yZn0gbmF0cyB3aXRoIM6yID0ge2JldGF9LCB7a2xfemVybzouMmZ9IHdp'
            'dGggzrIgPSAwLiBOb3RoaW5nIHByaWNlcyB0aGUgZHJpZnQgYW55IG1vcmUsIHNvIHRoZSBwb2xpY3kgZ29lcyB3aGVyZXZlciB0'
            'aGUgY2xhc3NpZmllciBwYXlzLg=='),
    ),
    '04_sampling': dict(
        choices='abc', tolerance=0.0, salt='cbc08bb13d3eec31',
        digests=(
            'cd7bdf188720359690465cf96cdbf4ce3e4d790a297155354a66244898a84082',
        ),
        explanation=(
            'UFBPJ3MgcmF0aW9zIGFuZCBpdHMgS0wgZXN0aW1hdGUgYXNzdW1lIHRoYXQgdGhlIHJlc3BvbnNlcyB3ZXJlIGRyYXduIGZyb20g'
            'z4BfzrggaXRzZWxmLiBBIHRlbXBlcmF0dXJlIG90aGVyIHRoYW4gMSwgdG9wLWsgb3IgdG9wLXAgd291bGQgc2FtcGxlIGZyb20g'
            'YW5vdGhlciBkaXN0cmlidXRpb24gYW5kIGJpYXMgYm90aDsgbGFiIDA1IHNob3dzIHdoYXQgZWFjaCBvZiB0aG9zZSBzZXR0aW5n'
            'cyBjaGFuZ2VzLg=='),
    ),
    '05_uniform_entropy': dict(
        choices='', tolerance=0.01, salt='74504c847417b13c',
        digests=(
            '6a460403469795f835d9ed39dbbc48466c5be0186868a23e985b503ecf7c8474',
            '97ec8cf14182d7b16305c7fb3ce5e14c1bf16f578443a4b2f2d10a62bef5ba79',
            '5c890fa736bb4463938e54b9ee63d633fcc6b04c9f29f03a3d4008297298b6eb',
        ),
        explanation=(
            'SCA9IOKIks6jIMK8wrdsb2cgwrwgPSBsb2cgNCDiiYggMS4zODYgbmF0czogdGhlIGxhcmdlc3QgZW50cm9weSBmb3VyIHRva2Vu'
            'cyBjYW4gaGF2ZS4gVGVtcGVyYXR1cmUg4oaSIOKIniBtb3ZlcyBhIGRpc3RyaWJ1dGlvbiB0b3dhcmRzIGl0LCB0ZW1wZXJhdHVy'
            'ZSDihpIgMCB0b3dhcmRzIDAu'),
    ),
    '05_top_k_one': dict(
        choices='abc', tolerance=0.0, salt='ef8abf0a03592070',
        digests=(
            '6c3f3702655db0af30632c6b7f342f4a1f9eabc4e5522da3ee5be529702f788b',
        ),
        explanation=(
            'dG9wX2sgPSAxIGtlZXBzIG9ubHkgdGhlIG1vc3QgbGlrZWx5IHRva2VuLCBzbyBzYW1wbGluZyBjYW4gZHJhdyBub3RoaW5nIGVs'
            'c2U6IGl0IGlzIGdyZWVkeSBkZWNvZGluZywgZXhhY3RseSBhcyB0ZW1wZXJhdHVyZSDihpIgMCBpcyAodGhlIGNoZWNrIGxvd190'
            'ZW1wZXJhdHVyZV9lcXVhbHNfZ3JlZWR5KS4='),
    ),
    '05_beam_vs_greedy': dict(
        choices='abc', tolerance=0.0, salt='d3cf8f2a50dd08fd',
        digests=(
            '72381aaba4698cb6d3cd1af1433fb47f9d1e56d572a1a742ca3faf36750669ed',
        ),
        explanation=(
            'VXN1YWxseSwgbm90IGFsd2F5cy4gQmVhbSBzZWFyY2gga2VlcHMgdGhlIGJlc3QgZmV3IHByZWZpeGVzIGF0IGVhY2ggc3RlcDsg'
            'dGhlIGdyZWVkeSBwcmVmaXggY2FuIGRyb3Agb3V0IG9mIHRoZSBiZWFtIGFuZCBpdHMgY29udGludWF0aW9uIGJlIGxvc3QsIHNv'
            'IG9uIHNvbWUgcHJvbXB0cyBncmVlZHkncyBzZXF1ZW5jZSBpcyB0aGUgbW9yZSBsaWtlbHkgb25lLiBIZXJlIGJlYW0g4oiSIGdy'
            'ZWVkeSA9IHtnYXA6Ky4yZn0gbmF0cy4='),
    ),
    '05_rl_temperature': dict(
        choices='abc', tolerance=0.0, salt='de63034bb766a884',
        digests=(
            '47bdb57ed2a9409ebf3473e6713199804e594ee47af9c190a5ecc83b8dc00b96',
        ),
        explanation=(
            'RHVyaW5nIFBQTyB0aGUgc2FtcGxlcyBtdXN0IGNvbWUgZnJvbSB0aGUgZGlzdHJpYnV0aW9uIHdob3NlIGxvZy1wcm9icyB0aGUg'
            'dXBkYXRlIGNvbXB1dGVzOiBpdHMgcHJvYmFiaWxpdHkgcmF0aW9zIGFuZCBLTCBhc3N1bWUgaXQuIExhYiAwNCdzIGxvb3AgY29t'
            'cHV0ZXMgdGhlbSBhdCB0ZW1wZXJhdHVyZSAxLCBzbyBpdCBzYW1wbGVzIHdpdGggdGVtcGVyYXR1cmUgMSwgdG9wX2s9MCwgdG9w'
            'X3A9MS4gU2FtcGxpbmcgaXQgaG90dGVyIHdvdWxkIHRyYWluIG9uIGEgZGlzdHJpYnV0aW9uIHRoZSBwb2xpY3kgZGlkIG5vdCBw'
            'cm9kdWNlOyBUUkwncyBHUlBPIGFuZCBSTE9PIGluc3RlYWQgY29tcHV0ZSB0aGVpciBsb2ctcHJvYnMgYXQgdGhlaXIgc2FtcGxp'
            'bmcgdGVtcGVyYXR1cmUu'),
    ),
    '06_generation_prompt': dict(
        choices='abc', tolerance=0.0, salt='688364909ee0075b',
        digests=(
            '7a9f98ab67ed48613dd83cc0eed076fdead89144b36bb04568779e9d59b4174b',
        ),
        explanation=(
            'SXQgYXBwZW5kcyB0aGUgbWFya2VyIHRoYXQgb3BlbnMgdGhlIGFzc2lzdGFudCdzIHR1cm4gKDx8aW1fc3RhcnR8PmFzc2lzdGFu'
            'dCBmb2xsb3dlZCBieSBhIG5ld2xpbmUgZm9yIFF3ZW4pLCBzbyB0aGUgcHJvbXB0IGVuZHMgZXhhY3RseSB3aGVyZSB0aGUgdHJh'
            'aW5lZCBhbnN3ZXIgYmVnYW46IHRoZSBzYW1lIHJ1bGUgYXMgbGFiIDAxJ3MgcHJvbXB0IGVuZGluZyB3aXRoICcjIyMgUmVzcG9u'
            'c2U6Jy4='),
    ),
    '06_lora_parameters': dict(
        choices='', tolerance=0.0, salt='77bcb5ffb89b2092',
        digests=(
            'a49909f2328355c39085e32e37615c4d4eb63b4bb4ab8f1f1d226ce653dcb0b0',
        ),
        explanation=(
            'QSA9IHIgw5cgZF9pbiBhbmQgQiA9IGRfb3V0IMOXIHI6IHLCtyhkX2luICsgZF9vdXQpID0gOCDCtyAoODk2ICsgODk2KSA9IDE0'
            'LDMzNiBudW1iZXJzLCBhZ2FpbnN0IDg5NiDCtyA4OTYgPSA4MDIsODE2IGZvciB0aGUgZnVsbCBtYXRyaXg6IDEuOCUu'),
    ),
    '06_full_ft_bytes': dict(
        choices='', tolerance=0.0, salt='6ead2df5dbf3f82a',
        digests=(
            '4e5dfa19a54da36bfd750e714ffa6b2ead67b60de98f14520ed4b06407d82f52',
        ),
        explanation=(
            'ZnAzMiB3ZWlnaHQgNCArIGdyYWRpZW50IDQgKyBBZGFtVydzIHR3byBtb21lbnRzIDQgKyA0ID0gMTYgYnl0ZXMgcGVyIHBhcmFt'
            'ZXRlciwgYmVmb3JlIGFueSBhY3RpdmF0aW9uczsgbWl4ZWQgcHJlY2lzaW9uIGNvbXB1dGVzIGluIDE2IGJpdHMgYnV0IGtlZXBz'
            'IGFuZCB1cGRhdGVzIHRoZXNlIGZwMzIgY29waWVzLg=='),
    ),
}
