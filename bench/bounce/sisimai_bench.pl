#!/usr/bin/perl
# sisimai_bench.pl DIR N - Debian's Sisimai (libsisimai-perl 4.25) over every file of DIR, N
# times in one process: the messages are read (and mbox files split) once with Sisimai::Mail,
# then each pass runs what Sisimai->make runs per message (Sisimai::Message->new, then
# Sisimai::Data->make). Prints the same line format as bounce_bench.
use strict;
use warnings;
use Time::HiRes qw(time);
use Sisimai;
use Sisimai::Mail;
use Sisimai::Message;
use Sisimai::Data;

my ($dir, $n) = @ARGV;
die "usage: $0 DIR N\n" unless defined $n;
opendir(my $dh, $dir) or die "$dir: $!\n";
my @files = sort grep { -f "$dir/$_" } readdir($dh);
closedir($dh);
my @msgs;
for my $f (@files) {
    my $mail = Sisimai::Mail->new("$dir/$f") or next;
    while (my $r = $mail->data->read) { push @msgs, $r }
}
my ($messages, $recipients) = (0, 0);
my $t0 = time;
for (1 .. $n) {
    for my $r (@msgs) {
        $messages++;
        my $mesg = Sisimai::Message->new('data' => $r) or next;
        my $data = Sisimai::Data->make('data' => $mesg) or next;
        $recipients += scalar @$data;
    }
}
my $s = time - $t0;
printf "sisimai messages=%d recipients=%d seconds=%.3f msgs_per_s=%.1f\n", $messages, $recipients, $s,
    $s > 0 ? $messages / $s : 0;
